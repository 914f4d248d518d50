"""A local Icechunk repository of virtual references to the image files.

Metadata documents and coordinate chunks are written as real keys; each image chunk is a
virtual reference to its whole file with the file's modification time as a
``last_updated_at`` checksum, so Icechunk refuses to serve a file changed after the export
instead of returning wrong pixels. The repository declares one virtual chunk container for
the ``file://`` url of the manifest's root; readers must authorise it when opening.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from pathlib import Path

from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ..errors import ExportError
from ..hierarchy import build_metadata, chunk_refs
from ..manifest import Manifest
from ..roots import Check
from ._common import Progress, check_output, checked_stat, file_url, staged_dir

__all__ = ["container_prefix", "export_icechunk"]


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


def export_icechunk(
    manifest: Manifest,
    out: str | os.PathLike[str],
    *,
    branch: str = "main",
    message: str = "imagezarr export",
    check: Check = "mtime",
    progress: Progress | None = None,
    overwrite: bool = False,
    force: bool = False,
) -> Path:
    """Create an Icechunk repository at ``out`` with one commit holding the hierarchy.

    Readers authorise the container when opening: ``authorize_virtual_chunk_access=
    {container_prefix(root): LocalFileSystemAccess}`` (see ``docs/export.md``).
    """
    try:
        import icechunk as ic
        from icechunk.credentials import LocalFileSystemAccess
    except ImportError as e:
        msg = "the icechunk export needs the icechunk package: pip install 'imagezarr[icechunk]'"
        raise ExportError(msg) from e
    path = check_output(manifest, out, overwrite=overwrite, force=force)
    prefix = container_prefix(manifest.root)
    refs = list(chunk_refs(manifest))
    with staged_dir(path) as tmp:
        config = ic.RepositoryConfig.default()
        config.set_virtual_chunk_container(
            ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(manifest.root))
        )
        repo = ic.Repository.create(
            ic.local_filesystem_storage(str(tmp)),
            config=config,
            authorize_virtual_chunk_access={prefix: LocalFileSystemAccess},
        )
        session = repo.writable_session(branch)
        store = session.store
        proto = default_buffer_prototype()
        for key, data in build_metadata(manifest).items():
            sync(store.set(key, proto.buffer.from_bytes(data)))
        root = os.path.join(os.path.normpath(manifest.root), "")
        for done, (key, i) in enumerate(refs, 1):
            if not os.path.normpath(manifest.file_path(i)).startswith(root):
                msg = (
                    f"{manifest.file_path(i)!r} lies outside the root {manifest.root!r}, so no "
                    "virtual chunk container covers it; re-scan from a folder that holds it"
                )
                raise ExportError(msg)
            st = checked_stat(manifest, i, check)
            store.set_virtual_ref(
                key,
                _location(manifest.file_path(i)),
                offset=0,
                length=st.size,
                checksum=_checksum(st.mtime_ns),
                validate_container=False,  # checked above: every file is under the root
            )
            if progress is not None and (done % 1024 == 0 or done == len(refs)):
                progress(done, len(refs))
        session.commit(message)
    return path


def _checksum(mtime_ns: int) -> datetime:
    """The file's mtime, rounded up to the whole second Icechunk stores."""
    return datetime.fromtimestamp(math.ceil(mtime_ns / 1e9), tz=UTC)
