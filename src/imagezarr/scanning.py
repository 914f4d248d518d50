"""Scanning: the steps of a scan up to, not including, arranging the files.

:func:`gather` lists the source, matches names to fields, probes headers (reusing what an
earlier manifest already knows) and computes checksums. :func:`imagezarr.scan` arranges what
it gathered into a manifest; :func:`imagezarr.inspect` reports on it without writing anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict

import numpy as np

from . import probe
from .discover import FileTable, NameFilter, add_checksums, discover, read_file_list, stat_listed
from .errors import DiscoveryError, LayoutError, ProbeError
from .executor import Executor
from .layout import (
    Derivation,
    Exclusion,
    LayoutSpec,
    Lookup,
    NameTest,
    Table,
    arrange,
    match_fields,
    table_paths,
)
from .layout.arrange import minority_images
from .layout.match import OTHER_SIGNATURE, UNREADABLE
from .layout.names import Proposal, propose
from .manifest import Manifest
from .paths import match_paths
from .presets import read_table
from .probe import ImageInfo
from .probe._many import Result as ProbeResult
from .probe._many import probe_entries
from .probe._spread import Spread, list_and_probe, take_probed
from .roots import FileEntry, Root, is_url, open_root, stale

__all__ = ["Gathered", "checksums", "gather", "layout_spec"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Gathered:
    """What a scan knows before arranging: every matched file with its fields and header."""

    root: Root
    spec: LayoutSpec
    options: Mapping[str, Any]
    listed: int  # files the listing returned (after glob and extensions)
    entries: list[FileEntry]  # matched files, readable or not
    fields: list[dict[str, Any]]
    infos: list[ImageInfo | None]  # None where the header could not be read
    failed: list[tuple[int, ProbeError]]
    unmatched: list[str]
    report: list[Exclusion] = field(default_factory=list)
    inferred: Proposal | None = None  # the pattern read off the names, when asked to

    @property
    def good(self) -> list[int]:
        """Indices of the entries whose header was read."""
        bad = {i for i, _ in self.failed}
        return [i for i in range(len(self.entries)) if i not in bad]


def _names(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


class LayoutKeywords(TypedDict, total=False):
    """The layout keywords :func:`imagezarr.scan` and :func:`imagezarr.inspect` share
    (see :func:`imagezarr.scan` for each)."""

    pattern: str | None
    glob: str | None
    types: Mapping[str, str] | None
    dims: str | Sequence[str] | None
    group_by: str | Sequence[str] | None
    on_mismatch: Literal["error", "skip", "split"] | None
    layout: LayoutSpec | None
    derived: Mapping[str, Derivation] | None
    lookups: Sequence[Lookup]
    tables: Sequence[Table]


LAYOUT_KEYWORDS: tuple[str, ...] = tuple(LayoutKeywords.__annotations__)


def layout_spec(
    layout: LayoutSpec | None,
    *,
    pattern: str | None = None,
    glob: str | None = None,
    types: Mapping[str, str] | None = None,
    dims: str | Sequence[str] | None = None,
    group_by: str | Sequence[str] | None = None,
    on_unmatched: Literal["error", "skip"] = "error",
    on_mismatch: Literal["error", "skip", "split"] | None = None,
    derived: Mapping[str, Derivation] | None = None,
    lookups: Sequence[Lookup] = (),
    tables: Sequence[Table] = (),
) -> LayoutSpec:
    """The layout to scan with: ``layout`` (or an empty one) with the options given applied."""
    base = layout or LayoutSpec()
    changes: dict[str, Any] = {
        "pattern": pattern,
        "glob": glob,
        "types": None if types is None else {**base.types, **types},
        "dims": _names(dims),
        "group_by": _names(group_by),
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if on_unmatched != "error":
        changes["on_unmatched"] = on_unmatched
    if on_mismatch is not None:
        changes["on_mismatch"] = on_mismatch
    # one replace: a spec validates on construction, and only the whole change is a layout
    return replace(
        base,
        **changes,
        derived={**base.derived, **(derived or {})},
        lookups=(*base.lookups, *(_absolute(lk) for lk in lookups)),
        tables=(*base.tables, *(_absolute(t) for t in tables)),
    )


def _absolute(item: Any) -> Any:
    """Local table paths are relative to the current folder; the layout records them
    absolute. A URL (a table in the bucket beside the images) stays as it is."""
    return item if is_url(item.path) else replace(item, path=os.path.abspath(item.path))


def gather(
    source: str | os.PathLike[str],
    spec: LayoutSpec,
    *,
    files: str | os.PathLike[str] | Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    allow_outside_root: bool = False,
    reuse: Manifest | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    infer: Mapping[str, Any] | None = None,
) -> Gathered:
    """List, match and probe the files of ``source`` for ``spec`` (see :func:`imagezarr.scan`);
    with ``infer`` (see :func:`split_inferred`) and no pattern or table in ``spec``, the
    pattern is read off the names and ``infer``'s layout keywords applied to it."""
    executor = executor or Executor()
    glob = spec.glob
    options = dict(storage_options or {})
    source_root = open_root(source, options, allow_outside_root=allow_outside_root)
    # tables, lookups and file lists may lie beside the images (in the bucket): read them
    # with the same options (a local one needs none)
    rows = {path: read_table(path, options) for path in table_paths(spec)}
    extensions = spec.extensions or probe.EXTENSIONS
    spread = None
    if files is not None:
        entries = stat_listed(source_root, read_file_list(files, options))
    elif executor.on_cluster and _PARTITION and source_root.can_list:
        spread = _spread(executor, source_root, spec, extensions, reuse, progress)
        entries = spread.entries
    else:
        entries = discover(source_root, glob=glob, extensions=extensions)
    if not entries:
        what = f"glob {glob!r}" if glob else "a known image extension"
        msg = f"no files under {source_root.url!r} match {what}; check the folder and --glob"
        raise DiscoveryError(msg)
    inferred = None
    if infer is not None and spec.pattern is None and not spec.tables:
        inferred = propose([e.path for e in entries])
        spec = with_proposal(spec, inferred, infer)
    report: list[Exclusion] = []
    kept, fields, unmatched = match_fields(
        [e.path for e in entries], spec, tables=rows, report=report
    )
    candidates = [entries[i] for i in kept]
    probed = None if spread is None else spread.probed
    infos, failed = _probe(source_root, candidates, reuse, executor, progress, probed)
    return Gathered(
        source_root,
        spec,
        options,
        len(entries),
        candidates,
        fields,
        infos,
        failed,
        unmatched,
        report,
        inferred,
    )


def split_inferred(
    infer: bool, layout: LayoutSpec | None, keywords: dict[str, Any]
) -> dict[str, Any] | None:
    """For a scan that reads its pattern off the names: take ``types``, ``dims`` and
    ``group_by`` out of ``keywords`` (they name fields only the inferred pattern will have)
    and return them, to be applied once it is known; None when there is nothing to infer."""
    given = keywords.get("pattern") or keywords.get("tables")
    if not infer or given or (layout is not None and (layout.pattern or layout.tables)):
        return None
    return {k: keywords.pop(k, None) for k in ("types", "dims", "group_by")}


def with_proposal(
    spec: LayoutSpec, proposal: Proposal, deferred: Mapping[str, Any] | None = None
) -> LayoutSpec:
    """``spec`` with the pattern, types and derived fields of ``proposal`` (what the user
    gave wins), then the ``deferred`` layout keywords (see :func:`split_inferred`)."""
    if proposal.pattern is not None:
        spec = replace(
            spec,
            pattern=proposal.pattern,
            types={**proposal.types, **spec.types},
            derived={**proposal.derived, **spec.derived},
            on_unmatched="skip" if proposal.left_out else spec.on_unmatched,
        )
    later = {k: v for k, v in (deferred or {}).items() if v is not None}
    return layout_spec(spec, **later) if later else spec


# -- scale-out: with a dask client, tasks list the source by prefix and probe what they find

# False lists in the client and sends only probes to the cluster, as scans did before the
# listing was partitioned: for benchmarks/remote_bench.py to compare the two
_PARTITION = True


def _spread(
    executor: Executor,
    root: Root,
    spec: LayoutSpec,
    extensions: Iterable[str],
    reuse: Manifest | None,
    progress: Progress | None,
) -> Spread:
    """The listing of ``root`` and the headers of the files that may be candidates, read by
    tasks that each list one part of it; files ``reuse`` holds unchanged are not probed."""
    known = {}
    if reuse is not None:
        files = reuse.files
        known = {files.paths[i]: files[i] for i in _images_by_file(reuse)}
    keep = NameFilter.of(root, spec.glob, extensions)
    wanted = NameTest.of(spec)
    return list_and_probe(executor, root, keep, wanted=wanted, known=known, progress=progress)


# -- probing


def _reusable(entries: list[FileEntry], reuse: Manifest | None) -> list[int]:
    """For each entry, the index of the same unchanged file in ``reuse``, else -1."""
    if reuse is None:
        return [-1] * len(entries)
    i, j = match_paths(reuse.files.paths, [e.path for e in entries])
    old = np.full(len(entries), -1, np.int64)
    old[j] = i
    hit = old >= 0
    sizes = np.fromiter((e.size for e in entries), np.int64, len(entries))
    mtimes = np.fromiter((e.mtime_ns for e in entries), np.int64, len(entries))
    at = np.where(hit, old, 0)
    # identical size and time (the common case) in bulk; the rest through the freshness check
    same = hit & (reuse.files.sizes[at] == sizes) & (reuse.files.mtimes[at] == mtimes)
    etags = reuse.files.etags
    if etags is not None:
        same &= np.fromiter(
            (
                not s or etags[i] == e.etag
                for s, i, e in zip(same, at.tolist(), entries, strict=True)
            ),
            bool,
            len(entries),
        )
    out = np.where(same, old, -1)
    for k in np.flatnonzero(hit & ~same).tolist():
        i = int(old[k])
        out[k] = i if stale(reuse.files[i], entries[k].stat, "mtime") is None else -1
    return out.tolist()


def _images_by_file(reuse: Manifest) -> dict[int, ImageInfo]:
    return {
        int(i): node.image for node in reuse.nodes for i in node.file_index[node.file_index >= 0]
    }


def _probe(
    root: Root,
    entries: list[FileEntry],
    reuse: Manifest | None,
    executor: Executor,
    progress: Progress | None,
    probed: Mapping[str, ProbeResult] | None = None,
) -> tuple[list[ImageInfo], list[tuple[int, ProbeError]]]:
    """Header probes of ``entries``, except those ``reuse`` holds unchanged; those in
    ``probed`` (by path, from the tasks of a scale-out scan) are taken from there."""
    if reuse is None and probed is None:
        return probe_entries(root, entries, executor=executor, progress=progress)  # type: ignore[return-value]
    old = _reusable(entries, reuse)
    images = _images_by_file(reuse) if reuse is not None else {}
    infos: list[ImageInfo | None] = [images.get(i) for i in old]
    todo = [k for k, info in enumerate(infos) if info is None]
    fresh = [entries[k] for k in todo]
    if probed is not None:
        got, failed = take_probed(executor, root, fresh, probed, progress=progress)
    else:
        got, failed = probe_entries(root, fresh, executor=executor, progress=progress)
    for k, info in zip(todo, got, strict=True):
        infos[k] = info
    return infos, [(todo[j], e) for j, e in failed]  # type: ignore[return-value]


def checksums(
    root: Root,
    entries: list[FileEntry],
    reuse: Manifest | None,
    executor: Executor,
    progress: Progress | None,
) -> list[FileEntry]:
    """``entries`` with checksums: recorded ones kept for unchanged files, the rest read
    where ``executor`` runs work (on a cluster's workers: every byte is read there)."""
    recorded = reuse.files.checksums if reuse is not None else None
    out = list(entries)
    todo = []
    for k, i in enumerate(_reusable(entries, reuse)):
        if i >= 0 and recorded is not None and recorded[i]:
            out[k] = replace(entries[k], checksum=recorded[i])
        else:
            todo.append(k)
    wanted = [entries[k] for k in todo]
    done = add_checksums(root, wanted, executor=executor, progress=progress)
    for k, e in zip(todo, done, strict=True):
        out[k] = e
    return out


# -- the whole scan


def run_scan(
    source: str | os.PathLike[str],
    spec: LayoutSpec,
    *,
    files: str | os.PathLike[str] | Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    allow_outside_root: bool = False,
    reuse: Manifest | None = None,
    executor: Executor | None = None,
    progress: Progress | None = None,
    on_unreadable: Literal["error", "skip"] = "error",
    checksum: bool = False,
    keep_labels: bool = False,
    report: list[Exclusion] | None = None,
    infer: Mapping[str, Any] | None = None,
) -> Manifest:
    """List, match, probe, filter, checksum and arrange: the scan :func:`imagezarr.scan`
    describes, for a ready ``spec`` (see :func:`layout_spec`). Unreadable files raise or are
    left out (``on_unreadable``); with ``on_mismatch="skip"`` the images that do not fit the
    majority are left out, each with its reason in ``report`` and the manifest. With
    ``infer`` (see :func:`split_inferred`), a spec without pattern takes the one the names
    suggest (a note says which)."""
    got = gather(
        source,
        spec,
        files=files,
        storage_options=storage_options,
        allow_outside_root=allow_outside_root,
        reuse=reuse,
        executor=executor,
        progress=progress,
        infer=infer,
    )
    spec = got.spec
    if report is not None:  # filled first, so a caller can explain a failure below
        report.extend(got.report)
    candidates, failed = got.entries, got.failed
    if failed and on_unreadable == "error":
        shown = "; ".join(str(e) for _, e in failed[:5])
        msg = (
            f"{len(failed)} file(s) are not readable images: {shown}. Remove them, narrow the "
            "glob, or skip them (on_unreadable='skip', --skip-unreadable)."
        )
        raise ProbeError(msg, path=candidates[failed[0][0]].path)
    good = got.good
    bad = sorted({i for i, _ in failed})
    excluded = [
        *got.report,
        *(Exclusion(candidates[i].path, UNREADABLE, str(e)) for i, e in failed),
    ]
    if spec.on_mismatch == "skip":
        odd = minority_images([got.fields[i] for i in good], [got.infos[i] for i in good], spec)
        excluded += [Exclusion(candidates[good[k]].path, OTHER_SIGNATURE, why) for k, why in odd]
        drop = {good[k] for k, _ in odd}
        good = [i for i in good if i not in drop]
    if not good:
        shown = ", ".join(repr(candidates[i].path) for i in bad[:5])
        msg = f"no file is left to scan: {len(got.unmatched)} left out by the layout" + (
            f", {len(bad)} not readable images ({shown})" if bad else ""
        )
        raise LayoutError(msg)
    kept_entries = [candidates[i] for i in good]
    if checksum:
        kept_entries = checksums(got.root, kept_entries, reuse, executor, progress)
    table = FileTable.from_entries(kept_entries)
    notes: list[str] = [] if got.inferred is None else [got.inferred.summary()]
    nodes = arrange(
        table.paths,
        [got.fields[i] for i in good],
        [got.infos[i] for i in good],  # type: ignore[misc]
        spec,
        notes=notes,
        previous=reuse.nodes if reuse is not None else (),  # an update keeps label order
        keep_labels=keep_labels,
    )
    return Manifest(
        root=got.root.url,
        files=table,
        layout=spec,
        nodes=tuple(nodes),
        unmatched=len(got.unmatched),
        unreadable=tuple(candidates[i].path for i in bad),
        notes=tuple(notes),
        excluded=tuple(excluded),
    )
