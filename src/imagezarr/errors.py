"""The imagezarr exception tree.

Grouped by what the caller does about it; each also subclasses the matching builtin so that
``except OSError`` / ``except ValueError`` keep working::

    ImageZarrError
    ├── DiscoveryError (OSError)          listing failed, nothing matched
    ├── ProbeError (ValueError)           header unreadable or corrupt
    │   └── UnsupportedImageError         a real image, but not one we can serve as one chunk
    ├── LayoutError (ValueError)
    │   ├── PatternMismatchError          files match the glob but not the pattern
    │   ├── DuplicateIndexError           two files for one slot of the grid
    │   └── InconsistentImagesError       shapes/dtypes/formats differ inside one array
    ├── ManifestError (ValueError)
    │   ├── ManifestVersionError          a version this release cannot read
    │   └── UnsafePathError               an entry escapes the dataset root
    ├── ChunkReadError (OSError)          a referenced file is unreadable at read time
    │   ├── SourceChangedError            size or mtime differ from the manifest
    │   └── ChunkDecodeError              the bytes do not decode as the declared image
    ├── MapError (ValueError)             a bad map_groups call (by, function, output)
    └── ExportError

    FilledChunkWarning (UserWarning)      with on_error="fill": a file read as the fill value

Every message says what went wrong, where (file or URL) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ChunkDecodeError",
    "ChunkReadError",
    "DiscoveryError",
    "DuplicateIndexError",
    "ExportError",
    "FilledChunkWarning",
    "ImageZarrError",
    "InconsistentImagesError",
    "LayoutError",
    "ManifestChangedError",
    "ManifestError",
    "ManifestVersionError",
    "MapError",
    "PatternMismatchError",
    "ProbeError",
    "SourceChangedError",
    "UnsafePathError",
    "UnsupportedImageError",
]


class ImageZarrError(Exception):
    """Base class of every error imagezarr raises on purpose."""


class DiscoveryError(ImageZarrError, OSError):
    """Listing the source failed, or nothing in it matched."""


class ProbeError(ImageZarrError, ValueError):
    """An image header could not be read or is corrupt. ``path`` names the file."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnsupportedImageError(ProbeError):
    """The file is an image, but of a kind that cannot be served as a single chunk."""


class LayoutError(ImageZarrError, ValueError):
    """The files cannot be arranged into the requested layout."""


class PatternMismatchError(LayoutError):
    """Files match the glob but not the pattern. ``paths`` holds every unmatched path."""

    def __init__(self, message: str, *, paths: list[str]) -> None:
        super().__init__(message)
        self.paths = paths


class DuplicateIndexError(LayoutError):
    """Two or more files map to the same slot of one array."""


class InconsistentImagesError(LayoutError):
    """Images that would share one array differ in shape, dtype or format."""


class ManifestError(ImageZarrError, ValueError):
    """A manifest document is malformed."""


class ManifestVersionError(ManifestError):
    """The manifest was written by a format version this release cannot read."""


class UnsafePathError(ManifestError):
    """A manifest entry points outside the dataset root."""


class ManifestChangedError(ManifestError):
    """The manifest file was replaced by another process (another ``update``, a ``watch``)
    while this one was working from it; nothing was saved."""


class ChunkReadError(ImageZarrError, OSError):
    """A file referenced by the manifest could not be read. ``path`` names it."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class SourceChangedError(ChunkReadError):
    """A referenced file changed (size or modification time) since the scan."""


class ChunkDecodeError(ChunkReadError):
    """A referenced file's bytes failed to decode as the image the manifest declares."""


class MapError(ImageZarrError, ValueError):
    """A bad ``map_groups`` call: an unknown ``by`` dim or function, an unwritable output."""


class ExportError(ImageZarrError):
    """An export could not be written."""


class FilledChunkWarning(UserWarning):
    """With ``on_error="fill"``: a missing, changed or undecodable file was read as the fill
    value instead of raising. The message names the file and what was wrong."""
