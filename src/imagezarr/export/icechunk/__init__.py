"""A local Icechunk repository of virtual references to the image files, kept up to date.

Metadata documents and coordinate chunks are written as real keys; each image chunk is a
virtual reference to its whole file with the file's modification time as a
``last_updated_at`` checksum, so Icechunk refuses to serve a file changed after the export
instead of returning wrong pixels. The repository declares one virtual chunk container for
the ``file://`` url of the manifest's root; readers must authorise it when opening.

Exporting onto a repository imagezarr wrote before commits only what changed since its
last commit, as a new snapshot; earlier snapshots stay readable (:func:`open_snapshot`).
The references of the last commit are kept in a small record beside Icechunk's own files
(``REPO/imagezarr/SNAPSHOT_ID.json.gz``): Icechunk 2.3 does not expose a chunk's location,
length or checksum (see ``docs/export.md``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

from ...access import Access, AccessKeywords
from ...errors import ExportError
from ...hierarchy import build_metadata
from ...manifest import ManifestLike, Opened, open_manifest
from .._common import Progress, check_output, staged_dir
from ._record import save_record
from ._update import update_repository
from ._write import (
    Counts,
    authorize,
    commit,
    container_prefix,
    current_refs,
    is_repo,
    load_icechunk,
    write_documents,
    write_refs,
)

if TYPE_CHECKING:
    from icechunk import IcechunkStore, SnapshotInfo

__all__ = [
    "branch_tip",
    "container_prefix",
    "export_icechunk",
    "history",
    "icechunk_summary",
    "open_snapshot",
]


def export_icechunk(
    manifest: ManifestLike | Opened,
    out: str | os.PathLike[str],
    *,
    branch: str = "main",
    message: str | None = None,
    tag: str | None = None,
    access: Access | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    force: bool = False,
    **options: Unpack[AccessKeywords],
) -> Path:
    """Write the manifest's hierarchy to the Icechunk repository ``out`` as one commit.

    A new repository gets one commit holding everything. An existing repository that
    imagezarr wrote for the same root gets a commit of the differences only (added, removed
    and changed references, changed metadata documents and coordinate chunks, deleted
    keys), with the counts in its message (``message`` replaces it) and, with the manifest's
    ``created`` time, in its metadata under ``"imagezarr"``; nothing is committed when
    nothing changed. ``overwrite`` replaces the repository instead. ``tag`` names the new
    snapshot (or the branch tip, when nothing changed).

    The access keywords (see :class:`~imagezarr.access.Access`) say where the images are and
    how they are judged unchanged (``check``; every referenced file is checked). Readers
    authorise the container when opening (see :func:`open_snapshot` and ``docs/export.md``).
    """
    opened = open_manifest(manifest, access, **options)
    manifest = opened.manifest
    ic, _ = load_icechunk()
    path = Path(os.path.abspath(os.fspath(out)))
    existing = not overwrite and is_repo(ic, path)
    path = check_output(manifest, out, overwrite=overwrite or existing, force=force)
    if existing:
        update_repository(opened, path, progress=progress, branch=branch, message=message, tag=tag)
        return path
    refs = current_refs(opened, progress)
    prefix = container_prefix(manifest.root)
    with staged_dir(path) as tmp:
        config = ic.RepositoryConfig.default()
        config.set_virtual_chunk_container(
            ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(manifest.root))
        )
        repo = ic.Repository.create(
            ic.local_filesystem_storage(str(tmp)),
            config=config,
            authorize_virtual_chunk_access=authorize([prefix]),
        )
        session = repo.writable_session(branch)
        metadata = build_metadata(manifest)
        write_documents(session.store, metadata, metadata)
        write_refs(session.store, opened, refs, refs)
        counts = Counts(len(manifest.files), 0, 0, len(refs), len(metadata), 0)
        text = f"imagezarr export: {len(manifest.files)} files"
        sid = commit(session, message or text, manifest, counts, branch)
        save_record(tmp, sid, prefix, list(metadata), refs)
        if tag is not None:
            repo.create_tag(tag, sid)
    return path


def open_snapshot(
    repo: str | os.PathLike[str],
    *,
    snapshot: str | None = None,
    tag: str | None = None,
    branch: str = "main",
    root: str | None = None,
) -> IcechunkStore:
    """A read-only zarr store of one snapshot of an exported repository.

    ``snapshot`` (an id) or ``tag`` picks the snapshot; otherwise the tip of ``branch``.
    Reading needs the repository's virtual chunk container authorised: the one of ``root``
    (the images' folder) when given, else every container the repository declares (open
    only repositories you trust that way). ``store.session.snapshot_id`` is the snapshot
    read. Open with ``zarr.open_group(store, mode="r")`` or ``xarray.open_zarr(store,
    zarr_format=3, consolidated=False, mask_and_scale=False)``.
    """
    if snapshot is not None and tag is not None:
        msg = "give snapshot or tag, not both"
        raise ValueError(msg)
    ic, _ = load_icechunk()
    storage = ic.local_filesystem_storage(os.path.abspath(os.fspath(repo)))
    if not ic.Repository.exists(storage):
        msg = f"{os.fspath(repo)!r} is not an Icechunk repository"
        raise ExportError(msg)
    if root is not None:
        prefixes: Iterable[str] = [container_prefix(root)]
    else:
        config = ic.Repository.fetch_config(storage)
        prefixes = config.virtual_chunk_containers if config is not None else {}
    opened = ic.Repository.open(storage, authorize_virtual_chunk_access=authorize(prefixes))
    if snapshot is not None:
        return opened.readonly_session(snapshot_id=snapshot).store
    if tag is not None:
        return opened.readonly_session(tag=tag).store
    return opened.readonly_session(branch).store


def history(repo: str | os.PathLike[str], *, branch: str = "main") -> list[SnapshotInfo]:
    """The snapshots of ``branch``, newest first: ``id``, ``written_at``, ``message`` and
    ``metadata`` (imagezarr's counts and manifest time under ``"imagezarr"``)."""
    ic, _ = load_icechunk()
    opened = ic.Repository.open(ic.local_filesystem_storage(os.path.abspath(os.fspath(repo))))
    return list(opened.ancestry(branch=branch))


def branch_tip(repo: str | os.PathLike[str], branch: str = "main") -> str | None:
    """The snapshot id at the tip of ``branch`` of the repository ``repo``; ``None`` when
    there is no such repository or branch (or icechunk is not installed)."""
    try:
        ic, _ = load_icechunk()
    except ExportError:
        return None
    path = Path(os.path.abspath(os.fspath(repo)))
    if not is_repo(ic, path):
        return None
    try:
        return str(ic.Repository.open(ic.local_filesystem_storage(str(path))).lookup_branch(branch))
    except ic.IcechunkError:
        return None


def icechunk_summary(repo: str | os.PathLike[str], before: str, branch: str = "main") -> str:
    """One line on what an export onto the repository whose tip was ``before`` committed."""
    tip = history(repo, branch=branch)[0]
    if tip.id == before:
        return f"{os.fspath(repo)} is up to date: nothing changed since snapshot {before}"
    return f"committed snapshot {tip.id} to {os.fspath(repo)}: {tip.message}"
