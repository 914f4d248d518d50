"""Export: the manifest's hierarchy as files other tools open without imagezarr.

Every format is built from :mod:`imagezarr.hierarchy` (``build_metadata`` and ``chunk_refs``),
so all of them describe exactly the arrays the store serves: same grid, codec, coordinates
and holes.

- ``kerchunk``: a kerchunk reference file (JSON, or Parquet), opened with fsspec ``reference://``.
- ``icechunk``: a local Icechunk repository of virtual references to the image files.
- ``zarr``: a real Zarr v3 copy with decoded, recompressed pixels (optionally OME-Zarr 0.5).
- ``links``: an on-disk Zarr v3 folder whose image chunks are symbolic links to the images.

Every export refuses to write inside the source folder unless ``force``, never replaces an
existing output unless ``overwrite``, and writes atomically (temporary path, then rename).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..access import Access, split_access
from ..errors import ExportError
from ..manifest import ManifestLike, Opened, check_codecs, open_manifest
from .icechunk import export_icechunk
from .kerchunk import export_kerchunk, references
from .links import export_links
from .zarr_copy import export_zarr

__all__ = [
    "FORMATS",
    "export",
    "export_icechunk",
    "export_kerchunk",
    "export_links",
    "export_zarr",
    "references",
]

FORMATS = {
    "kerchunk": export_kerchunk,
    "icechunk": export_icechunk,
    "zarr": export_zarr,
    "links": export_links,
}


def export(
    manifest: ManifestLike | Opened,
    format: str,
    out: str | os.PathLike[str],
    *,
    access: Access | None = None,
    overwrite: bool = False,
    force: bool = False,
    **options: Any,
) -> Path:
    """Export a manifest (object, path or opened) in ``format`` to ``out``; return the output
    path.

    The access keywords (``root``, ``storage_options``, ``allow_outside_root``, ``check``,
    ``on_error``; see :class:`~imagezarr.access.Access`) apply to every format; other
    ``options`` go to the format's function (:func:`export_kerchunk`,
    :func:`export_icechunk`, :func:`export_zarr`, :func:`export_links`).

    Examples
    --------
    >>> import tempfile
    >>> from imagezarr.testing import small_manifest
    >>> m, out = small_manifest(group_by="barcode", dims=("frame",)), tempfile.mkdtemp()
    >>> export(m, "kerchunk", f"{out}/psii.refs.json").name
    'psii.refs.json'
    >>> export(m, "zarr", f"{out}/psii.zarr", shards=2, ome=True).name
    'psii.zarr'
    """
    try:
        writer = FORMATS[format]
    except KeyError:
        msg = f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}"
        raise ExportError(msg) from None
    given, rest = split_access(options)
    opened = open_manifest(manifest, access, **given)
    check_codecs(opened.manifest)  # foreign readers would build them too
    return writer(opened, out, overwrite=overwrite, force=force, **rest)  # type: ignore[operator]
