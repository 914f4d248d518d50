"""The xarray engine ``"imagezarr"``: opens the store, then delegates to xarray's zarr
engine. It imports only the store and manifest layers.

``xr.open_dataset("exp.imagezarr.json", engine="imagezarr", group="A1")`` opens one group;
:func:`imagezarr.open_dataset` is the same call with the engine filled in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from xarray.backends import BackendEntrypoint
from xarray.backends.zarr import ZarrBackendEntrypoint

from .access import ACCESS_KEYWORDS, Access, split_access
from .manifest import SUFFIX, Manifest
from .store import ImageZarrStore

__all__ = ["ImageZarrBackendEntrypoint"]


def _store(obj: Any, access: Access) -> ImageZarrStore:
    """The store to read: ``obj`` itself when it is one and ``access`` changes nothing.

    A store keeps its own access except where the call names an option: a named option
    always wins, even when it names the default (``check="mtime"`` over a store opened with
    ``check="size"``).
    """
    if isinstance(obj, ImageZarrStore):
        return obj.with_access(access)
    return ImageZarrStore(obj, access=access)


def _groups(store: ImageZarrStore) -> str:
    return ", ".join(repr(n.path) for n in store.manifest.nodes[:8])


DASK_CHUNK_BYTES = 8 * 2**20


def _prefer_image_batches(image: Any) -> None:
    """Ask for dask chunks of many images (~8 MiB) instead of one task per image.

    ``chunks={}`` follows the backend's preferred chunks. One image per dask task costs a
    zarr call each, while a batch lets zarr decode its images in parallel in one call (the
    figures are in README, Performance).
    """
    preferred = dict(image.encoding.get("preferred_chunks", {}))
    # the image's own axes are stored whole (one chunk each); outer dims one slot per chunk
    whole = dict(zip(image.dims, image.encoding.get("chunks", image.shape), strict=True))
    inner = []
    for d in reversed(image.dims):
        if whole[d] != image.sizes[d]:
            break
        inner.insert(0, d)
    per_image = image.dtype.itemsize * int(np.prod([image.sizes[d] for d in inner] or [1]))
    budget = max(1, DASK_CHUNK_BYTES // max(1, per_image))
    for dim in reversed([d for d in image.dims if d not in inner]):
        take = min(image.sizes[dim], budget)
        preferred[dim] = take
        budget = max(1, budget // take) if take == image.sizes[dim] else 1
    image.encoding["preferred_chunks"] = preferred


# xarray's CF decoders, passed on to its zarr engine; integer pixels stay integers unless
# the caller asks for masking and scaling
_DECODERS = (
    "mask_and_scale",
    "decode_times",
    "concat_characters",
    "decode_coords",
    "use_cftime",
    "decode_timedelta",
)


def _decoders(given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(_DECODERS))
    if unknown:
        msg = (
            f"the imagezarr engine takes no keyword {unknown[0]!r}; it takes group, "
            f"drop_variables, {', '.join(ACCESS_KEYWORDS)} and xarray's decoders "
            f"({', '.join(_DECODERS)})"
        )
        raise TypeError(msg)
    return {"mask_and_scale": False, **given}


class ImageZarrBackendEntrypoint(BackendEntrypoint):
    """Open ``*.imagezarr.json`` manifests with ``xr.open_dataset(..., engine="imagezarr")``.

    Takes ``group``, ``drop_variables``, the access keywords of
    :class:`~imagezarr.access.Access` (``root``, ``storage_options``, ``allow_outside_root``,
    ``check``, ``on_error``) or ``access=``, and xarray's decoders (``decode_times``, ...),
    which go to xarray's zarr engine; ``mask_and_scale`` is False unless asked for.
    """

    description = "Open imagezarr manifests (virtual Zarr over image files) in xarray"
    url = "https://pypi.org/project/imagezarr/"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "group",
        "access",
        *ACCESS_KEYWORDS,
        *_DECODERS,
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str] | Manifest | ImageZarrStore,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        access: Access | None = None,
        **kwargs: Any,
    ) -> Any:
        options, rest = split_access(kwargs)
        store = _store(filename_or_obj, Access.of(access, options))
        group = checked_group(store, group)
        ds = ZarrBackendEntrypoint().open_dataset(
            store,
            group=group or None,
            drop_variables=drop_variables,
            consolidated=False,
            zarr_format=3,
            **_decoders(rest),
        )
        if "image" in ds.variables:
            _prefer_image_batches(ds["image"].variable)
        return ds

    def open_datatree(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str] | Manifest | ImageZarrStore,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        access: Access | None = None,
        **kwargs: Any,
    ) -> Any:
        options, rest = split_access(kwargs)
        store = _store(filename_or_obj, Access.of(access, options))
        if group:
            checked_group(store, group, below=True)
        return ZarrBackendEntrypoint().open_datatree(
            store,
            drop_variables=drop_variables,
            group=group,
            consolidated=False,
            zarr_format=3,
            **_decoders(rest),
        )

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if isinstance(filename_or_obj, Manifest | ImageZarrStore):
            return True
        if isinstance(filename_or_obj, str | os.PathLike):
            return os.fspath(filename_or_obj).lower().endswith(SUFFIX)
        return False


def labels_in_memory(ds: Any) -> Any:
    """``ds`` with its label coordinates (one value per label, or per slot of a few dims:
    small) read into NumPy, so that ``groupby``, ``sel`` and ``where`` on them work under
    ``chunks={}`` (xarray makes every variable that is not an index a dask array there, and
    grouping by a dask array fails). ``path`` and ``present`` hold one value per image slot
    and stay lazy, as the pixels do."""
    names = [
        name
        for name, var in ds.coords.items()
        if name not in ds.indexes
        and name not in _PER_SLOT
        and var.ndim
        and "y" not in var.dims
        and "x" not in var.dims
    ]
    if not names:
        return ds
    return ds.assign_coords({name: ds[name].variable.compute() for name in names})


_PER_SLOT = ("image", "path", "present")


def checked_group(store: ImageZarrStore, group: str | None, *, below: bool = False) -> str:
    """The group to open: ``group`` if the manifest has it (or, with ``below``, groups under
    it), else the only one; a clear error listing the groups otherwise."""
    paths = [n.path for n in store.manifest.nodes]
    if group is None:
        if paths == [""] or len(paths) == 1:
            return paths[0]
        msg = (
            f"this manifest has {len(paths)} groups ({_groups(store)}, ...): pass "
            "group=... or use open_datatree"
        )
        raise ValueError(msg)
    wanted = group.strip("/")
    if wanted in paths or (below and any(p.startswith(wanted + "/") for p in paths)):
        return wanted
    more = ", ..." if len(paths) > 8 else ""
    msg = f"no group {group!r} in this manifest; its groups: {_groups(store)}{more}"
    raise KeyError(msg)
