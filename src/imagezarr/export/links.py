"""An on-disk Zarr v3 folder: real metadata files, image chunks as symbolic links to the images.

Any zarr v3 reader with the image codec (``imagecodecs-zarr``) opens it as a plain local store:
no imagezarr, no reference file system, no copy of the pixels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Unpack

from ..access import Access, AccessKeywords
from ..errors import ExportError
from ..hierarchy import build_metadata, chunk_refs
from ..manifest import ManifestLike, Opened, open_manifest
from ._common import Progress, check_output, checked_stat, local_path, staged_dir

__all__ = ["export_links"]


def export_links(
    manifest: ManifestLike | Opened,
    out: str | os.PathLike[str],
    *,
    access: Access | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    force: bool = False,
    **options: Unpack[AccessKeywords],
) -> Path:
    """Write a Zarr v3 folder whose image chunk files are symlinks (absolute targets).

    The access keywords (see :class:`~imagezarr.access.Access`) say where the images are;
    ``check`` (the freshness check, ``"mtime"`` by default; ``"none"`` skips it) refuses
    files that are missing or changed since the scan: a dangling link would read as a hole.
    Raises :class:`ExportError` where symbolic links cannot be made (e.g. Windows without
    developer mode).

    >>> import tempfile, zarr
    >>> from imagezarr.testing import small_manifest
    >>> m = small_manifest(group_by="barcode", dims=("frame",))
    >>> out = export_links(m, f"{tempfile.mkdtemp()}/exp.links.zarr")
    >>> zarr.open_group(out, mode="r")["A1/image"][1].shape
    (8, 8)
    """
    opened = open_manifest(manifest, access, **options)
    m = opened.manifest
    path = check_output(m, out, overwrite=overwrite, force=force)
    refs = list(chunk_refs(m))
    with staged_dir(path) as tmp:
        for key, data in build_metadata(m).items():
            target = tmp.joinpath(*key.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for done, (key, i) in enumerate(refs, 1):
            target = local_path(opened, i)
            checked_stat(opened, i)
            link = tmp.joinpath(*key.split("/"))
            link.parent.mkdir(parents=True, exist_ok=True)
            _symlink(target, link)
            if progress is not None and (done % 256 == 0 or done == len(refs)):
                progress(done, len(refs))
    return path


def _symlink(target: str, link: Path) -> None:
    try:
        os.symlink(target, link)
    except (OSError, NotImplementedError) as e:
        msg = (
            f"cannot create the symbolic link {str(link)!r} -> {target!r}: "
            f"{getattr(e, 'strerror', None) or e}. This system or file system does not allow "
            "symlinks (on Windows enable developer mode); use --format kerchunk or zarr instead"
        )
        raise ExportError(msg) from e
