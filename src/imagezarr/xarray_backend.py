"""Stage 7, xarray engine ``"imagezarr"``: opens the store, then delegates to xarray's zarr
engine. It imports only the store and manifest layers.

``xr.open_dataset("exp.imagezarr.json", engine="imagezarr", group="A1")`` opens one group;
:func:`imagezarr.open_dataset` is the same call with the engine filled in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from xarray.backends import BackendEntrypoint
from xarray.backends.zarr import ZarrBackendEntrypoint

from .manifest import SUFFIX, Manifest
from .roots import normalize_check
from .store import ImageZarrStore

__all__ = ["ImageZarrBackendEntrypoint"]


def _store(obj: Any, **options: Any) -> ImageZarrStore:
    """The store to read: ``obj`` itself when it is one and no option changes it.

    A store keeps its own ``check`` and ``on_error`` unless the call names others (the
    defaults ``"mtime"`` and ``"raise"`` do not override a store built otherwise).
    """
    if isinstance(obj, ImageZarrStore):
        check = normalize_check(options["check"])
        options["check"] = obj.check if check == "mtime" else check
        if options["on_error"] == "raise":
            options["on_error"] = obj.on_error
        if (
            options["root"] is None
            and options["storage_options"] is None
            and not options["allow_outside_root"]
            and (options["check"], options["on_error"]) == (obj.check, obj.on_error)
        ):
            return obj
        obj = obj.manifest
    return ImageZarrStore.from_manifest(obj, **options)


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


class ImageZarrBackendEntrypoint(BackendEntrypoint):
    """Open ``*.imagezarr.json`` manifests with ``xr.open_dataset(..., engine="imagezarr")``."""

    description = "Open imagezarr manifests (virtual Zarr over image files) in xarray"
    url = "https://pypi.org/project/imagezarr/"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "group",
        "root",
        "check",
        "allow_outside_root",
        "storage_options",
        "on_error",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str] | Manifest | ImageZarrStore,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        root: str | os.PathLike[str] | None = None,
        check: str = "mtime",
        allow_outside_root: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        on_error: str = "raise",
    ) -> Any:
        store = _store(
            filename_or_obj,
            root=root,
            check=check,
            allow_outside_root=allow_outside_root,
            storage_options=storage_options,
            on_error=on_error,
        )
        if group is None:
            paths = [n.path for n in store.manifest.nodes]
            if paths != [""]:
                if len(paths) != 1:
                    msg = (
                        f"this manifest has {len(paths)} groups ({_groups(store)}, ...): pass "
                        "group=... or use open_datatree"
                    )
                    raise ValueError(msg)
                group = paths[0]
        # integer pixels must stay integers: no fill-value masking, no scaling
        ds = ZarrBackendEntrypoint().open_dataset(
            store,
            group=group or None,
            drop_variables=drop_variables,
            mask_and_scale=False,
            consolidated=False,
            zarr_format=3,
        )
        if "image" in ds.variables:
            _prefer_image_batches(ds["image"].variable)
        return ds

    def open_datatree(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str] | Manifest | ImageZarrStore,
        *,
        drop_variables: str | Iterable[str] | None = None,
        root: str | os.PathLike[str] | None = None,
        check: str = "mtime",
        allow_outside_root: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        on_error: str = "raise",
        **kwargs: Any,
    ) -> Any:
        store = _store(
            filename_or_obj,
            root=root,
            check=check,
            allow_outside_root=allow_outside_root,
            storage_options=storage_options,
            on_error=on_error,
        )
        return ZarrBackendEntrypoint().open_datatree(
            store,
            drop_variables=drop_variables,
            mask_and_scale=False,
            consolidated=False,
            zarr_format=3,
            **kwargs,
        )

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        if isinstance(filename_or_obj, Manifest | ImageZarrStore):
            return True
        if isinstance(filename_or_obj, str | os.PathLike):
            return os.fspath(filename_or_obj).lower().endswith(SUFFIX)
        return False
