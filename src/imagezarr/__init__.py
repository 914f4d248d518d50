"""imagezarr: a virtual, labeled Zarr hierarchy over existing folders of image files.

The public names below are imported on first use (PEP 562), so ``import imagezarr`` and the
command line start without loading zarr, xarray or dask until a command needs them.

>>> import imagezarr
>>> sorted(imagezarr.__all__)[:3]
['Access', 'ChunkDecodeError', 'ChunkReadError']
"""

from __future__ import annotations

import importlib
import sys
import types

from ._version import __version__

# not typing.TYPE_CHECKING: importing typing costs 5 ms of the console script's start, the
# window in which a Ctrl-C still shows Python's traceback (type checkers know this idiom)
TYPE_CHECKING = False

if TYPE_CHECKING:  # what static checkers and IDEs see; at run time, __getattr__ below
    from typing import Any

    from .access import Access
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
        ManifestChangedError,
        ManifestError,
        ManifestVersionError,
        MapError,
        PatternMismatchError,
        ProbeError,
        SourceChangedError,
        UnsafePathError,
        UnsupportedImageError,
    )
    from .inspection import inspect
    from .layout import LayoutSpec, LayoutWarning, Lookup, Table
    from .manifest import Manifest, open_manifest
    from .mapping import map_groups
    from .preview import preview
    from .store import ImageZarrStore
    from .verify import verify

# public name -> the module that defines it
_WHERE = {
    "Access": "access",
    **dict.fromkeys(
        (
            "load_manifest",
            "open_dataset",
            "open_datatree",
            "open_group",
            "open_store",
            "scan",
            "update",
            "watch",
        ),
        "api",
    ),
    **dict.fromkeys(
        (
            "ChunkDecodeError",
            "ChunkReadError",
            "DiscoveryError",
            "DuplicateIndexError",
            "ExportError",
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
        ),
        "errors",
    ),
    "inspect": "inspection",
    **dict.fromkeys(("LayoutSpec", "LayoutWarning", "Lookup", "Table"), "layout"),
    **dict.fromkeys(("Manifest", "open_manifest"), "manifest"),
    "map_groups": "mapping",
    "ImageZarrStore": "store",
    "verify": "verify",
}

__all__ = [
    "Access",
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
    "ManifestChangedError",
    "ManifestError",
    "ManifestVersionError",
    "MapError",
    "PatternMismatchError",
    "ProbeError",
    "SourceChangedError",
    "Table",
    "UnsafePathError",
    "UnsupportedImageError",
    "__version__",
    "inspect",
    "load_manifest",
    "map_groups",
    "open_dataset",
    "open_datatree",
    "open_group",
    "open_manifest",
    "open_store",
    "preview",
    "scan",
    "update",
    "verify",
    "watch",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        msg = f"module 'imagezarr' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value  # later lookups find it without this hook
    return value


class _Package(types.ModuleType):
    """The package's module type: ``imagezarr.preview`` and ``imagezarr.verify`` are the
    functions, although subpackages of those names exist (``from imagezarr.preview import
    contact_sheet``).

    Importing a submodule binds its name on the parent; with the names imported on first
    use, that would replace the function whenever anything imports the submodule first.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: the function stays
        super().__setattr__(name, value)


# public functions named like the submodule that defines them (or a neighbour)
_SHADOWED = {"preview": "preview._sheet", "verify": "verify"}
_WHERE["preview"] = _SHADOWED["preview"]


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _notebook_view() -> None:
    """Show a :class:`Manifest` in a notebook as a summary and a small contact sheet.

    Registered with IPython's HTML formatter (when IPython runs) rather than written as a
    ``_repr_html_`` method, so that the manifest, an early stage, never reaches for the
    preview, a late one. Looked up by name: the manifest module need not be imported yet.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type_by_name("imagezarr.manifest._model", "Manifest", _manifest_html)


def _manifest_html(manifest: Any) -> str:
    try:
        from .preview import summary_html

        return summary_html(manifest)
    except Exception as e:  # a notebook display must never raise: say what this is and why
        import html

        text = f"imagezarr manifest: {len(manifest.files)} files; root {manifest.root}\n({e})"
        return f"<pre>{html.escape(text)}</pre>"


_notebook_view()
