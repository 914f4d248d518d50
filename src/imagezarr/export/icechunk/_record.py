"""The record of an export's references, kept beside Icechunk's own files.

Icechunk 2.3 does not expose a virtual chunk's location, length or checksum, so each commit
imagezarr makes is followed by ``REPO/imagezarr/SNAPSHOT_ID.json.gz``: the keys it wrote
and, per image chunk key, the file (relative path), size and mtime it references. Icechunk
never lists or cleans that folder. Only records of branch tips are kept.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ._write import Ref

if TYPE_CHECKING:
    from icechunk import Repository

RECORD_DIR = "imagezarr"  # beside Icechunk's own folders; Icechunk never lists or cleans it
RECORD_FORMAT = 1


def record_path(repo: Path, snapshot_id: str) -> Path:
    return repo / RECORD_DIR / f"{snapshot_id}.json.gz"


def save_record(
    repo: Path, snapshot_id: str, prefix: str, documents: list[str], refs: Mapping[str, Ref]
) -> None:
    """Record the keys and references of snapshot ``snapshot_id``, column by column."""
    doc = {
        "format": RECORD_FORMAT,
        "snapshot": snapshot_id,
        "container": prefix,
        "documents": documents,
        "refs": {
            "key": list(refs),
            "path": [r.path for r in refs.values()],
            "size": [r.size for r in refs.values()],
            "mtime_ns": [r.mtime_ns for r in refs.values()],
        },
    }
    target = record_path(repo, snapshot_id)
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(tmp, target)


def load_record(
    repo: Path, snapshot_id: str, prefix: str
) -> tuple[list[str], dict[str, Ref]] | None:
    """The recorded keys and references of ``snapshot_id``; ``None`` when there is none (a
    commit made without imagezarr, an interrupted export) or it does not match."""
    try:
        with gzip.open(record_path(repo, snapshot_id), "rt", encoding="utf-8") as f:
            doc = json.load(f)
        if (
            doc.get("format") != RECORD_FORMAT
            or doc.get("snapshot") != snapshot_id
            or doc.get("container") != prefix
        ):
            return None
        cols = doc["refs"]
        refs = {
            k: Ref(p, int(s), int(t))
            for k, p, s, t in zip(
                cols["key"], cols["path"], cols["size"], cols["mtime_ns"], strict=True
            )
        }
        return list(doc["documents"]), refs
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None


def prune_records(repo: Repository, path: Path) -> None:
    """Remove records of snapshots that no branch points at any more (updates start at tips)."""
    tips = {repo.lookup_branch(b) for b in repo.list_branches()}
    for p in (path / RECORD_DIR).glob("*.json.gz"):
        if p.name.removesuffix(".json.gz") not in tips:
            p.unlink(missing_ok=True)
