"""imagezarr: a virtual, labeled Zarr hierarchy over existing folders of image files.

>>> import imagezarr
>>> sorted(imagezarr.__all__)[:3]
['ChunkDecodeError', 'ChunkReadError', 'DiscoveryError']
"""

from __future__ import annotations

from ._version import __version__
from .api import (
    load_manifest,
    open_dataset,
    open_datatree,
    open_group,
    open_store,
    scan,
    update,
    watch,
)
from .errors import (
    ChunkDecodeError,
    ChunkReadError,
    DiscoveryError,
    DuplicateIndexError,
    ExportError,
    ImageZarrError,
    InconsistentImagesError,
    LayoutError,
    ManifestError,
    ManifestVersionError,
    PatternMismatchError,
    ProbeError,
    SourceChangedError,
    UnsafePathError,
    UnsupportedImageError,
)
from .inspection import inspect
from .layout import LayoutSpec, LayoutWarning, Lookup, Table
from .manifest import Manifest
from .preview import preview
from .store import ImageZarrStore

__all__ = [
    "ChunkDecodeError",
    "ChunkReadError",
    "DiscoveryError",
    "DuplicateIndexError",
    "ExportError",
    "ImageZarrError",
    "ImageZarrStore",
    "InconsistentImagesError",
    "LayoutError",
    "LayoutSpec",
    "LayoutWarning",
    "Lookup",
    "Manifest",
    "ManifestError",
    "ManifestVersionError",
    "PatternMismatchError",
    "ProbeError",
    "SourceChangedError",
    "Table",
    "UnsafePathError",
    "UnsupportedImageError",
    "__version__",
    "inspect",
    "load_manifest",
    "open_dataset",
    "open_datatree",
    "open_group",
    "open_store",
    "preview",
    "scan",
    "update",
    "watch",
]
