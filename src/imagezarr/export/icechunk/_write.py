"""Writing an Icechunk export: which references, documents and commit properties."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ...errors import ExportError
from ...hierarchy import chunk_refs
from ...manifest import Manifest, Opened
from .._common import Progress, checked_stat, file_url, local_path

if TYPE_CHECKING:
    from icechunk import IcechunkStore


def container_prefix(root: str) -> str:
    """The virtual chunk container url prefix for the images under ``root``.

    Not percent-encoded: Icechunk 2.3 matches the decoded chunk location against the prefix
    as written (an encoded prefix never matches a root with a space or non-ASCII name).

    >>> container_prefix("/data/my images")
    'file:///data/my images/'
    """
    return file_url(root).rstrip("/") + "/"


def _location(path: str) -> str:
    """A chunk location: a url, so reserved characters (space, ``%``, ``#``, ...) are encoded."""
    return file_url(path, encode=True)


class Ref(NamedTuple):
    """What a virtual reference was written from: the file (relative path), size, mtime."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Counts:
    """Files added, removed and changed since the last commit (``None``: not known, no
    record of it); virtual references and documents written, keys deleted."""

    added: int | None
    removed: int | None
    changed: int | None
    references: int  # virtual references written (new or changed files, moved positions)
    documents: int  # metadata documents and coordinate chunks written
    deleted: int  # keys deleted


def current_refs(opened: Opened, progress: Progress | None) -> dict[str, Ref]:
    """Every image chunk key with the file it references, checked fresh against the manifest."""
    manifest = opened.manifest
    pairs = list(chunk_refs(manifest))
    root = os.path.join(os.path.normpath(manifest.root), "")
    refs: dict[str, Ref] = {}
    for done, (key, i) in enumerate(pairs, 1):
        where = local_path(opened, i)
        if not os.path.normpath(where).startswith(root):
            msg = (
                f"{where!r} lies outside the root {manifest.root!r}, so no "
                "virtual chunk container covers it; re-scan from a folder that holds it"
            )
            raise ExportError(msg)
        st = checked_stat(opened, i)
        refs[key] = Ref(manifest.files.paths[i], st.size, st.mtime_ns)
        if progress is not None and (done % 1024 == 0 or done == len(pairs)):
            progress(done, len(pairs))
    return refs


def write_documents(
    store: IcechunkStore, metadata: Mapping[str, bytes], keys: Iterable[str]
) -> int:
    """Write ``keys`` of ``metadata``: documents parents first, then coordinate chunks."""
    proto = default_buffer_prototype()
    ordered = sorted(keys, key=lambda k: (not k.endswith("zarr.json"), k.count("/")))
    for key in ordered:
        sync(store.set(key, proto.buffer.from_bytes(metadata[key])))
    return len(ordered)


def write_refs(
    store: IcechunkStore, opened: Opened, refs: Mapping[str, Ref], keys: Iterable[str]
) -> int:
    """Set the virtual reference of each of ``keys``; return how many were set."""
    n = 0
    for key in keys:
        ref = refs[key]
        store.set_virtual_ref(
            key,
            _location(opened.source.location(ref.path)),
            offset=0,
            length=ref.size,
            checksum=_checksum(ref.mtime_ns),
            validate_container=False,  # checked in current_refs: every file is under the root
        )
        n += 1
    return n


def commit(session: Any, message: str, manifest: Manifest, counts: Counts, branch: str) -> str:
    """Commit with imagezarr's properties: the manifest's time, root and counts."""
    import icechunk as ic

    properties = {
        "created": manifest.created,
        "root": manifest.root,
        "files": len(manifest.files),
        **{k: v for k, v in asdict(counts).items() if v is not None},
    }
    try:
        return str(session.commit(message, metadata={"imagezarr": properties}))
    except ic.ConflictError as e:
        msg = f"another writer committed to branch {branch!r} meanwhile; export again ({e})"
        raise ExportError(msg) from e


def _checksum(mtime_ns: int) -> datetime:
    """The file's mtime, rounded up to the whole second Icechunk stores."""
    return datetime.fromtimestamp(math.ceil(mtime_ns / 1e9), tz=UTC)


def load_icechunk() -> tuple[Any, Any]:
    try:
        import icechunk as ic
        from icechunk.credentials import LocalFileSystemAccess
    except ImportError as e:
        msg = "the icechunk export needs the icechunk package: pip install 'imagezarr[icechunk]'"
        raise ExportError(msg) from e
    _quiet_storage_warnings(ic)
    return ic, LocalFileSystemAccess


def _quiet_storage_warnings(ic: Any) -> None:
    """Icechunk's Rust side logs WARN lines about concurrent commits and conditional PUTs to
    stderr on every local write; an export is one process writing once (a second writer's
    commit is caught as a ConflictError above), so they say nothing true to its user. Only
    errors are shown, unless the user chose a filter with ICECHUNK_LOG."""
    if "ICECHUNK_LOG" not in os.environ:
        ic.set_logs_filter("error")


def authorize(prefixes: Iterable[str]) -> dict[str, Any]:
    _, access = load_icechunk()
    return dict.fromkeys(prefixes, access)


def is_repo(ic: Any, path: Path) -> bool:
    return path.is_dir() and bool(ic.Repository.exists(ic.local_filesystem_storage(str(path))))


def get(store: IcechunkStore, key: str) -> bytes | None:
    buf = sync(store.get(key, default_buffer_prototype()))
    return None if buf is None else buf.to_bytes()
