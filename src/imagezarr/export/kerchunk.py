"""kerchunk reference files (version 1): JSON, or fsspec's Parquet layout for large sets.

:func:`references` is pure: a manifest in, the reference document out. Metadata documents are
inlined (``zarr.json`` as JSON text, coordinate chunks as ``base64:``), image chunks are
whole-file references ``[url]``. Urls are absolute ``file://`` urls by default, or
``{{root}}/relative/path`` with a ``root`` template that readers can override when the images
move (fsspec resolves a relative url against the current directory, not the reference file).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Unpack

from ..access import Access, AccessKeywords
from ..errors import ExportError
from ..hierarchy import build_metadata, chunk_refs
from ..manifest import ManifestLike, Opened, open_manifest
from ..roots import write_atomic
from ._common import Progress, check_output, checked_stats, file_url
from ._v2 import to_v2

__all__ = ["PARQUET_THRESHOLD", "export_kerchunk", "references"]

#: with ``parquet=None``, reference sets with more image chunks than this are written as Parquet
PARQUET_THRESHOLD = 1_000_000
TEMPLATE = "root"
# kerchunk references are for kerchunk's tools, which read Zarr v2 (see references())
DEFAULT_ZARR_FORMAT = 2


def _inline(key: str, data: bytes) -> str:
    if key == "zarr.json" or key.endswith("/zarr.json"):
        return data.decode("utf-8")
    return "base64:" + base64.b64encode(data).decode("ascii")


def references(
    manifest: ManifestLike | Opened,
    *,
    templates: bool = False,
    root_url: str | None = None,
    zarr_format: int = DEFAULT_ZARR_FORMAT,
    access: Access | None = None,
    **options: Unpack[AccessKeywords],
) -> dict[str, Any]:
    """The kerchunk version-1 reference document of ``manifest``.

    Parameters
    ----------
    manifest
        The dataset.
    zarr_format
        2 (default): ``.zgroup``/``.zarray``/``.zattrs`` keys and numcodecs codec ids, what
        kerchunk's own tools read (its xarray engine, ``MultiZarrToZarr``, VirtualiZarr's
        kerchunk parsers); readers register imagecodecs' numcodecs codecs
        (``imagecodecs.numcodecs.register_codecs()``). 3: ``zarr.json`` keys and imagecodecs'
        zarr 3 codecs, as the store and the other exports are.
    templates
        Write image urls as ``{{root}}/relative/path`` with a ``root`` template, instead of
        absolute urls.
    root_url
        The value of the ``root`` template (default: the ``file://`` url of the manifest's
        root). Only with ``templates``.
    access, **options
        Where the images are (:class:`~imagezarr.access.Access`); no file is read here.

    Examples
    --------
    >>> from imagezarr.testing import small_manifest
    >>> m = small_manifest(group_by="barcode", dims=("frame",))
    >>> refs = references(m, templates=True)
    >>> refs["templates"]["root"].startswith("file:///"), refs["refs"]["A2/image/1.0.0"]
    (True, ['{{root}}/2020-05-31/A2-doi-20200531T210700-PSII0-2.png'])
    >>> references(m, zarr_format=3)["refs"]["A2/image/c/1/0/0"][0].startswith("file:///")
    True
    """
    if zarr_format not in (2, 3):
        msg = f"zarr_format must be 2 or 3, not {zarr_format!r}"
        raise ExportError(msg)
    opened = open_manifest(manifest, access, **options)
    m = opened.manifest
    refs: dict[str, Any] = {k: _inline(k, v) for k, v in build_metadata(m).items()}
    files = m.files
    done = to_v2 if zarr_format == 2 else dict
    if templates:
        for key, i in chunk_refs(m):
            path = files[i].path
            if "{" in path or "}" in path:
                msg = (
                    f"{path!r} contains a brace, which fsspec's simple templates cannot "
                    "express; export without templates (absolute urls)"
                )
                raise ExportError(msg)
            refs[key] = [f"{{{{{TEMPLATE}}}}}/{path}"]
        root = root_url if root_url is not None else file_url(m.root)
        return {"version": 1, "templates": {TEMPLATE: root.rstrip("/")}, "refs": done(refs)}
    if root_url is not None:
        msg = "root_url only applies with templates=True (--templates)"
        raise ExportError(msg)
    for key, i in chunk_refs(m):
        refs[key] = [file_url(opened.location(i))]
    return {"version": 1, "refs": done(refs)}


def export_kerchunk(
    manifest: ManifestLike | Opened,
    out: str | os.PathLike[str],
    *,
    parquet: bool | None = None,
    templates: bool = False,
    root_url: str | None = None,
    record_size: int = 100_000,
    zarr_format: int = DEFAULT_ZARR_FORMAT,
    access: Access | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    force: bool = False,
    **options: Unpack[AccessKeywords],
) -> Path:
    """Write ``manifest`` as a kerchunk reference set: one JSON file, or a Parquet folder.

    ``parquet=None`` chooses Parquet for an output named ``*.parq``/``*.parquet`` or for more
    than :data:`PARQUET_THRESHOLD` image chunks. Other parameters as for :func:`references`.
    Every referenced file is first judged with the freshness check ``check`` (``"mtime"``
    by default, as for the other exports): a missing or changed file is an
    :class:`ExportError` naming it, as references to it would read wrong pixels;
    ``check="none"`` skips that. The check does not survive into the references: a reader
    of them gets whatever the files hold when read.
    """
    opened = open_manifest(manifest, access, **options)
    m = opened.manifest
    path = check_output(m, out, overwrite=overwrite, force=force)
    checked_stats(opened, sorted({i for _, i in chunk_refs(m)}), progress)
    if parquet is None:
        nchunks = sum(int((n.file_index >= 0).sum()) for n in m.nodes)
        parquet = path.suffix in (".parq", ".parquet") or nchunks > PARQUET_THRESHOLD
    if parquet:
        from ._parquet import write_parquet

        # the rows and hole chunks come from the v3 form; the metadata in the chosen one
        doc = references(opened, templates=templates, root_url=root_url, zarr_format=3)
        write_parquet(doc, path, record_size=record_size, zarr_format=zarr_format)
        return path
    doc = references(opened, templates=templates, root_url=root_url, zarr_format=zarr_format)
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    write_atomic(path, text.encode("utf-8"))
    return path
