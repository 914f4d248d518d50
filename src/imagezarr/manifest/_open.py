"""Opening a manifest: a manifest (or where one lies) and an :class:`Access` in, the manifest
with the root its images are read through out.

This is the one place that decides how a manifest is reached; every verb calls
:func:`open_manifest`, so an option means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Unpack

from ..access import Access, AccessKeywords
from ..roots import Check, Root, is_url, open_root, root_url
from ._load import ManifestLike, read_manifest
from ._model import Manifest

__all__ = ["Opened", "open_manifest"]


@dataclass(frozen=True, eq=False)
class Opened:
    """A manifest as opened here: the manifest (re-rooted if the access said so), the access
    it was opened with, and the :class:`~imagezarr.roots.Root` its images are read through.

    >>> import imagezarr.testing
    >>> opened = open_manifest(imagezarr.testing.small_manifest(), check="size")
    >>> opened.check, opened.on_error, opened.source.remote
    ('size', 'raise', False)
    """

    manifest: Manifest
    access: Access
    source: Root
    #: where the manifest was read from (absolute path or URL); None for a manifest object
    origin: str | None = None
    #: the stamp of the bytes it was read from (see ``manifest._guard``); None likewise
    stamp: str | None = None

    @property
    def check(self) -> Check:
        """The freshness check reads apply (``"mtime"`` unless the access says otherwise)."""
        return self.access.resolved_check

    @property
    def on_error(self) -> str:
        """``"raise"`` or ``"fill"``: what a bad file does to a read."""
        return self.access.resolved_on_error

    def location(self, index: int) -> str:
        """Absolute local path (or URL, for a remote root) of file ``index``."""
        return self.source.location(self.manifest.files.paths[index])

    def with_access(self, access: Access) -> Opened:
        """This manifest opened with ``access`` laid over the access it was opened with;
        itself when that changes nothing, and the same root when only the checks change."""
        merged = self.access | access
        if merged == self.access:
            return self
        reach = ("root", "storage_options", "allow_outside_root")
        if all(getattr(merged, k) == getattr(self.access, k) for k in reach):
            return replace(self, access=merged)
        again = open_manifest(self.manifest, merged)
        return replace(again, origin=self.origin, stamp=self.stamp)


def open_manifest(
    manifest: ManifestLike | Opened,
    access: Access | None = None,
    **options: Unpack[AccessKeywords],
) -> Opened:
    """Open a manifest (object, path or URL, or an already opened one) with an access.

    ``access`` and the keywords ``options`` (which win over it) are those of
    :class:`~imagezarr.access.Access`. An :class:`Opened` manifest keeps what it was opened
    with, unless the access given here says otherwise.

    Raises ``ValueError`` when ``storage_options`` are given but neither the manifest nor
    its root is remote: they would be ignored, and a misspelt URL would go unnoticed.
    """
    how = Access.of(access, options)
    if isinstance(manifest, Opened):
        return manifest.with_access(how)
    origin = stamp = None
    if isinstance(manifest, Manifest):
        m = manifest if how.root is None else replace(manifest, root=root_url(how.root))
        remote_manifest = False
    else:
        m, stamp = read_manifest(manifest, how)
        origin = root_url(manifest)
        remote_manifest = is_url(origin)
    remote_root = is_url(m.root)
    if how.storage_options and not (remote_root or remote_manifest):
        msg = (
            "storage_options reach remote manifests and roots (s3://, gs://, az://, "
            f"https://); this manifest and its root {m.root!r} are local: drop them"
        )
        raise ValueError(msg)
    root = open_root(m.root, how.options if remote_root else None, allow_outside_root=how.outside)
    return Opened(m, how, root, origin, stamp)
