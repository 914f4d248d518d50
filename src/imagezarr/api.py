"""The user-facing functions. Thin: each calls the stages and holds no logic of its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Unpack

from .access import Access, AccessKeywords
from .executor import Executor
from .layout import Derivation, Exclusion, LayoutSpec, Lookup, Table
from .manifest import (
    Manifest,
    ManifestLike,
    Opened,
    load_manifest,
)
from .scanning import layout_spec, run_scan, split_inferred
from .updating import update, watch

if TYPE_CHECKING:  # zarr, xarray and the store load when a call reads pixels
    import xarray as xr
    import zarr

    from .store import ImageZarrStore

__all__ = [
    "load_manifest",
    "open_dataset",
    "open_datatree",
    "open_group",
    "open_store",
    "scan",
    "update",
    "watch",
]

Progress = Callable[[int, int], None]


def scan(
    source: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    glob: str | None = None,
    types: Mapping[str, str] | None = None,
    dims: str | Sequence[str] | None = None,
    group_by: str | Sequence[str] | None = None,
    on_unmatched: Literal["error", "skip"] = "error",
    on_unreadable: Literal["error", "skip"] = "error",
    on_mismatch: Literal["error", "skip", "split"] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    layout: LayoutSpec | None = None,
    derived: Mapping[str, Derivation] | None = None,
    lookups: Sequence[Lookup] = (),
    tables: Sequence[Table] = (),
    files: str | os.PathLike[str] | Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    client: Any = None,
    allow_outside_root: bool = False,
    checksum: bool = False,
    reuse: Manifest | None = None,
    keep_labels: bool = False,
    report: list[Exclusion] | None = None,
    infer: bool = False,
) -> Manifest:
    """Scan a folder of images into a :class:`Manifest`, reading only file headers.

    Parameters
    ----------
    source
        The folder; searched recursively, hidden files skipped.
    pattern
        Regex with named groups, matched against the file name (or, when it contains ``/``,
        the path relative to ``source``). Without it, one dim ``file`` in natural order,
        unless ``infer``.
    glob
        Which files to consider (case-insensitive); default: every known image extension.
    types
        Field types: ``"int"``, ``"float"``, ``"str"`` (default) or a strptime format.
    dims
        Order of the outer dims; default: the pattern's fields not used by ``group_by``.
    group_by
        Field(s) that split the hierarchy into one group per value.
    on_unmatched, on_unreadable
        ``"skip"`` to leave out (and count) files that do not match the pattern, or whose
        header cannot be read, instead of raising.
    progress
        Called as ``progress(done, total)`` while headers are probed.
    layout
        A ready :class:`LayoutSpec`, e.g. from :func:`imagezarr.presets.plantcv` or a saved
        manifest's ``layout``; ``pattern``, ``glob``, ``types``, ``dims`` and ``group_by``
        given here override it, ``derived``, ``lookups`` and ``tables`` add to it.
    derived
        New fields: ``"day(timestamp, 20:00)"``, ``"strftime(timestamp, %Y-%m)"`` or a callable
        taking the file's fields (a callable is recorded by name only and must be given again
        when the layout is re-used).
    lookups, tables
        :class:`Lookup` tables adding fields keyed by a field's values; sidecar
        :class:`Table` objects listing files. Their files are read here (CSV or JSON).
    files
        The files to take instead of listing the source: relative paths, or a local path or
        URL of an index file with one relative path per line. Needed for HTTP(S) sources,
        which cannot be listed.
    storage_options
        How to reach a remote source (``s3://``, ``gs://``, ``az://``, ``https://``): keywords
        for ``obstore.store.from_url`` such as ``config`` and ``client_options``. Credentials
        otherwise come from the environment; they are never written into the manifest.
    client
        A ``dask.distributed`` client (or scheduler address) to spread the scan over: the
        source is listed by prefix (folder), each task listing one and probing the headers
        it found there; files at the top are probed in batches.
    allow_outside_root
        Follow symbolic links that point out of ``source`` (refused by default).
    checksum
        Also record a content checksum per file (reads every byte once), so that reads and
        ``verify`` can use ``check="checksum"``: the one check that sees a rewrite keeping
        size and modification time, and that survives a copy that changes every time.
    reuse
        An earlier manifest of the same root: files it holds unchanged (same size,
        modification time and etag) keep their recorded header and checksum instead of being
        read again, so only new and changed files are probed (what :func:`update` does).
        Its labels keep their order; new ones are sorted in among them.
    keep_labels
        With ``reuse``: a label of ``reuse`` whose files are all gone stays in its
        coordinate as a slice of holes, instead of leaving it (shapes then only grow).
    report
        A list that receives an :class:`~imagezarr.layout.Exclusion` per file the layout left
        out (name does not match, not in table, filtered out) and per table entry naming no
        file, each with its reason and detail.
    infer
        Without ``pattern`` (and tables): read the fields off the names themselves (tokens
        between separators, dates and timestamps, counters such as ``s2``; see
        :mod:`imagezarr.layout.names`), as the command line does by default. The manifest's
        notes say which pattern was taken, or why none fit (then: one dim ``file``).

    Examples
    --------
    >>> import tempfile
    >>> from imagezarr.testing import make_psii_experiment
    >>> folder = tempfile.mkdtemp()
    >>> _ = make_psii_experiment(folder, plants=2, nights=1, steps=1, frames=2, shape=(8, 8),
    ...                          holes=0)
    >>> m = scan(folder, pattern=r"(?P<plant>A\\d+)-doi-\\w+-PSII0-(?P<frame>\\d+)\\.png",
    ...          types={"frame": "int"}, group_by="plant")
    >>> [n.path for n in m.nodes], m.node("A1").dims, m.node("A1").shape
    (['A1', 'A2'], ('frame',), (2,))
    """
    keywords: dict[str, Any] = {
        "pattern": pattern,
        "types": types,
        "dims": dims,
        "group_by": group_by,
        "tables": tables,
    }
    deferred = split_inferred(infer, layout, keywords)
    spec = layout_spec(
        layout,
        glob=glob,
        on_unmatched=on_unmatched,
        on_mismatch=on_mismatch,
        derived=derived,
        lookups=lookups,
        **keywords,
    )
    # a scheduler address is connected once for the scan (listing, probes, checksums)
    with Executor.of(client, workers).running() as executor:
        return run_scan(
            source,
            spec,
            files=files,
            storage_options=storage_options,
            allow_outside_root=allow_outside_root,
            reuse=reuse,
            executor=executor,
            progress=progress,
            on_unreadable=on_unreadable,
            checksum=checksum,
            keep_labels=keep_labels,
            report=report,
            infer=deferred,
        )


def open_store(
    manifest: ManifestLike | Opened | ImageZarrStore,
    *,
    access: Access | None = None,
    pipeline: Literal["auto"] | None = "auto",
    **options: Unpack[AccessKeywords],
) -> ImageZarrStore:
    """Open a manifest (object, path or URL) as a read-only zarr store.

    The access keywords (or ``access=``; see :class:`Access`): ``root`` re-roots it onto a
    copy of the images (a folder or a URL, e.g. a mirror); ``storage_options`` reach remote
    manifests and roots; ``check`` and ``on_error`` are described in
    :class:`ImageZarrStore`, as is ``pipeline``. A store given here is returned with the
    access named laid over its own.

    >>> import imagezarr.testing
    >>> store = open_store(imagezarr.testing.small_manifest(), check="size")
    >>> store.check, open_store(store, check="mtime").check
    ('size', 'mtime')
    """
    from .store import ImageZarrStore

    if isinstance(manifest, ImageZarrStore):
        return manifest.with_access(Access.of(access, options))
    return ImageZarrStore(manifest, access=access, pipeline=pipeline, **options)


def open_group(
    manifest: ManifestLike | Opened | ImageZarrStore,
    *,
    path: str | None = None,
    access: Access | None = None,
    **options: Unpack[AccessKeywords],
) -> zarr.Group:
    """Open a manifest (or its group ``path``) as a read-only zarr Group; keywords as for
    :func:`open_store`. A ``path`` that is no group raises a KeyError listing the groups
    (zarr's own GroupNotFoundError names none)."""
    import zarr

    from .xarray_backend import checked_group

    store = open_store(manifest, access=access, **options)
    where = "" if path is None else checked_group(store, path, below=True)
    return zarr.open_group(store, path=where, mode="r", zarr_format=3)


def open_dataset(
    manifest: ManifestLike | Opened | ImageZarrStore,
    *,
    group: str | None = None,
    chunks: Any = None,
    access: Access | None = None,
    **kwargs: Any,
) -> xr.Dataset:
    """Open one group of a manifest as an :class:`xarray.Dataset` (lazily).

    ``chunks={}`` gives dask arrays in batches of whole images (~8 MiB each, so a task
    decodes many images in one zarr call), the label coordinates staying NumPy (so that
    ``groupby("barcode")`` works); the default loads lazily without dask. Pixels keep
    their integer dtype (no NaN masking). The access keywords (``root``, ``storage_options``,
    ``allow_outside_root``, ``check``, ``on_error``; or ``access=``, see :class:`Access`)
    say how the images are reached and trusted: ``on_error="fill"`` reads a missing, changed
    or undecodable file as 0 with one warning naming it (default: raise). Every other keyword
    goes to :func:`xarray.open_dataset` (``decode_times``, ``drop_variables``, ...).

    >>> import imagezarr.testing
    >>> ds = open_dataset(imagezarr.testing.small_manifest(), decode_times=False)
    >>> str(ds.timestamp.dtype), ds.image.dims
    ('int64', ('barcode', 'night', 'param', 'frame', 'y', 'x'))
    """
    import xarray as xr

    from .xarray_backend import ImageZarrBackendEntrypoint, labels_in_memory

    ds = xr.open_dataset(
        _openable(manifest),  # type: ignore[arg-type]
        engine=ImageZarrBackendEntrypoint,
        group=group,
        chunks=chunks,
        access=access,
        **kwargs,
    )
    return ds if chunks is None else labels_in_memory(ds)


def open_datatree(
    manifest: ManifestLike | Opened | ImageZarrStore,
    *,
    chunks: Any = None,
    access: Access | None = None,
    **kwargs: Any,
) -> xr.DataTree:
    """Open a whole manifest as an :class:`xarray.DataTree`: one node per group.

    Keywords as for :func:`open_dataset`.
    """
    import xarray as xr

    from .xarray_backend import ImageZarrBackendEntrypoint, labels_in_memory

    tree = xr.open_datatree(
        _openable(manifest),  # type: ignore[arg-type]
        engine=ImageZarrBackendEntrypoint,
        chunks=chunks,
        access=access,
        **kwargs,
    )
    return tree if chunks is None else tree.map_over_datasets(labels_in_memory)


def _openable(manifest: Any) -> Any:
    # xarray hands the object to the engine as it is; an Opened manifest is read by a store
    from .store import ImageZarrStore

    return ImageZarrStore(manifest, pipeline="auto") if isinstance(manifest, Opened) else manifest
