"""Committing only what changed since an export's last commit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zarr.core.sync import sync

from ...errors import ExportError
from ...hierarchy import build_metadata
from ...manifest import Opened
from .._common import Progress
from ._record import load_record, prune_records, save_record
from ._write import (
    Counts,
    Ref,
    authorize,
    commit,
    container_prefix,
    current_refs,
    get,
    load_icechunk,
    write_documents,
    write_refs,
)

if TYPE_CHECKING:
    from icechunk import IcechunkStore, Repository


def update_repository(
    opened: Opened,
    path: Path,
    *,
    progress: Progress | None,
    branch: str,
    message: str | None,
    tag: str | None,
) -> None:
    """Commit to ``branch`` of the imagezarr repository ``path`` what differs from ``manifest``.

    The keys and references of the branch tip come from its record (``_record``); without
    one, every reference is rewritten and every key not in the hierarchy deleted.
    """
    manifest = opened.manifest
    ic, _ = load_icechunk()
    prefix = container_prefix(manifest.root)
    repo = _open_existing(ic, path, manifest.root, prefix)
    if tag is not None and tag in repo.list_tags():
        msg = f"{str(path)!r} already has a tag {tag!r}; choose another name"
        raise ExportError(msg)
    try:
        tip = repo.lookup_branch(branch)
    except ic.IcechunkError:
        msg = (
            f"{str(path)!r} has no branch {branch!r} (branches: "
            f"{', '.join(sorted(repo.list_branches()))})"
        )
        raise ExportError(msg) from None
    session = repo.writable_session(branch)
    store = session.store
    _check_written_by_imagezarr(store, path)
    refs = current_refs(opened, progress)
    record = load_record(path, tip, prefix)
    metadata = build_metadata(manifest)
    if record is None:  # no record of the last commit: every key the repository holds is ours
        owned, old_refs = set(_list_keys(store)), None
    else:
        keys, old_refs = record
        owned = set(keys) | old_refs.keys()
    gone = sorted(owned - metadata.keys() - refs.keys(), key=_deletion_order)
    for key in gone:
        sync(store.delete(key))
    documents = write_documents(store, metadata, _changed_documents(store, metadata))
    written = write_refs(store, opened, refs, _changed_refs(refs, old_refs))
    counts = _count(refs, old_refs, written, documents, len(gone))
    if not session.has_uncommitted_changes:
        session.discard_changes()
        sid = tip
    else:
        sid = commit(session, message or _update_message(counts), manifest, counts, branch)
        save_record(path, sid, prefix, list(metadata), refs)
        prune_records(repo, path)
    if tag is not None:
        repo.create_tag(tag, sid)


def _update_message(counts: Counts) -> str:
    if counts.added is None:
        return (
            f"imagezarr update: {counts.references} references rewritten (no record of the "
            "previous references)"
        )
    c = counts
    return f"imagezarr update: {c.added} added, {c.removed} removed, {c.changed} changed"


def _open_existing(ic: Any, path: Path, root: str, prefix: str) -> Repository:
    storage = ic.local_filesystem_storage(str(path))
    config = ic.Repository.fetch_config(storage)
    containers = set(config.virtual_chunk_containers) if config is not None else set()
    if prefix not in containers:
        theirs = ", ".join(sorted(containers)) or "none"
        msg = (
            f"{str(path)!r} was exported for other images (virtual chunk container {theirs}), "
            f"not for the root {root!r} ({prefix}); export to another output, or replace it "
            "with overwrite=True (--overwrite)"
        )
        raise ExportError(msg)
    return ic.Repository.open(storage, authorize_virtual_chunk_access=authorize([prefix]))


def _check_written_by_imagezarr(store: IcechunkStore, path: Path) -> None:
    doc = get(store, "zarr.json")
    attrs = json.loads(doc).get("attributes", {}) if doc is not None else {}
    if "imagezarr" not in attrs:
        msg = (
            f"{str(path)!r} is an Icechunk repository that imagezarr did not write; export to "
            "another output, or replace it with overwrite=True (--overwrite)"
        )
        raise ExportError(msg)


def _changed_documents(store: IcechunkStore, metadata: Mapping[str, bytes]) -> list[str]:
    """Keys of the metadata documents and coordinate chunks that differ from the stored ones."""
    return [key for key, data in metadata.items() if get(store, key) != data]


def _changed_refs(refs: Mapping[str, Ref], old: Mapping[str, Ref] | None) -> list[str]:
    """Image chunk keys whose reference differs: new position, other file, changed file.

    Compared by chunk key, so an image whose position moved (a label inserted before it)
    is re-referenced at its new key and its old key is re-used or deleted.
    """
    if old is None:
        return list(refs)
    return [key for key, ref in refs.items() if old.get(key) != ref]


def _count(
    refs: Mapping[str, Ref],
    old: Mapping[str, Ref] | None,
    written: int,
    documents: int,
    deleted: int,
) -> Counts:
    """Files (by path) added, removed and changed (other size or mtime) since the last commit."""
    if old is None:
        return Counts(None, None, None, written, documents, deleted)
    new_files = {r.path: r for r in refs.values()}
    old_files = {r.path: r for r in old.values()}
    both = new_files.keys() & old_files.keys()
    return Counts(
        added=len(new_files.keys() - old_files.keys()),
        removed=len(old_files.keys() - new_files.keys()),
        changed=sum(new_files[p] != old_files[p] for p in both),
        references=written,
        documents=documents,
        deleted=deleted,
    )


def _deletion_order(key: str) -> tuple[int, int]:
    """Chunks before documents, and deeper documents before their parents."""
    if key.endswith("zarr.json"):
        return (1, -key.count("/"))
    return (0, 0)


def _list_keys(store: IcechunkStore) -> list[str]:
    async def collect() -> list[str]:
        return [key async for key in store.list()]

    return sync(collect())
