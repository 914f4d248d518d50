"""Manifest: the single source of truth, saved as a small versioned JSON document.

The format is described in ``docs/manifest.md``. Loading treats the document as hostile input:
every field is type- and range-checked before use, and file entries may not leave the root.
"""

from __future__ import annotations

from ._guard import lock_path, read_stamp, save_replacing, stamp_of
from ._load import ManifestLike, check_codecs, from_json, load_manifest
from ._model import (
    FORMAT,
    PACK_ABOVE,
    SUFFIX,
    VERSION,
    FileDiff,
    Manifest,
    diff_files,
    emptied_labels,
)
from ._open import Opened, open_manifest

__all__ = [
    "FORMAT",
    "PACK_ABOVE",
    "SUFFIX",
    "VERSION",
    "FileDiff",
    "Manifest",
    "ManifestLike",
    "Opened",
    "check_codecs",
    "diff_files",
    "emptied_labels",
    "from_json",
    "load_manifest",
    "lock_path",
    "open_manifest",
    "read_stamp",
    "save_replacing",
    "stamp_of",
]
