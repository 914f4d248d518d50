"""Present a selection in the layout PlantCV's photosynthesis (PSII) functions take.

PlantCV (``plantcv/plantcv/photosynthesis/read_cropreporter.py``, ``classes.PSII_data``) holds
each protocol as an :class:`xarray.DataArray` named ``ojip_dark``, ``ojip_light``,
``pam_dark`` or ``pam_light`` with dims ``("x", "y", "frame_label", "measurement")``,
coordinates ``frame_label`` (``Fdark``, ``F0``, ``Fm``, ... for dark-adapted data;
``Flight``, ``Fp``, ``Fmp`` for light-adapted), ``frame_num`` (over ``frame_label``, 0..n-1)
and ``measurement`` (``"t0"``, ...), and the attribute ``long_name``. PlantCV's first image dim
is called ``x`` but holds image *rows* (its masks have shape ``ps_da.shape[:2]``); this adapter
keeps that convention, so a mask of shape ``(rows, cols)`` fits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import LayoutError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["LONG_NAMES", "psii_dataarray"]

Protocol = Literal["ojip_dark", "ojip_light", "pam_dark", "pam_light"]
LONG_NAMES: dict[str, str] = {
    "ojip_dark": "OJIP dark-adapted measurements",
    "ojip_light": "OJIP light-adapted measurements",
    "pam_dark": "pam dark-adapted measurements",
    "pam_light": "pam light-adapted measurements",
}


def psii_dataarray(
    image: xr.DataArray,
    *,
    frame: str = "frame",
    frame_labels: str | Mapping[Any, str] | Sequence[str] | None = None,
    measurement: str | None = None,
    name: Protocol = "ojip_dark",
    long_name: str | None = None,
) -> xr.DataArray:
    """One PSII protocol of one plant as PlantCV's ``PSII_data`` DataArray.

    Parameters
    ----------
    image
        A selection whose dims are ``frame``, optionally ``measurement``, and the image's
        ``y, x`` (select the plant, day and step first, e.g. ``ds.image.sel(...)``).
    frame
        The dim holding the frames.
    frame_labels
        The PlantCV frame labels: the name of a coordinate along ``frame`` (e.g. added by a
        lookup table), a mapping from frame values to labels, or labels in frame order.
        Default: the frame values as text.
    measurement
        The dim holding repeated measurements (e.g. the light steps); without it the result
        has one measurement ``"t0"``, as PlantCV's dark-adapted data.
    name, long_name
        The protocol (PlantCV reads ``ps_da.name`` to choose the analysis) and its label.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray(np.zeros((3, 4, 5), "uint8"), dims=("frame", "y", "x"),
    ...                   coords={"frame": ["1", "2", "3"]})
    >>> ps = psii_dataarray(da, frame_labels=["Fdark", "F0", "Fm"])
    >>> ps.dims, ps.shape, ps.frame_label.values.tolist(), ps.name
    (('x', 'y', 'frame_label', 'measurement'), (4, 5, 3, 1), ['Fdark', 'F0', 'Fm'], 'ojip_dark')
    """
    import xarray as xr

    if name not in LONG_NAMES:
        msg = f"name must be one of {list(LONG_NAMES)} (PlantCV's protocols), not {name!r}"
        raise LayoutError(msg)
    wanted = [frame, *([measurement] if measurement else []), "y", "x"]
    extra = [d for d in image.dims if d not in wanted]
    absent = [d for d in wanted if d not in image.dims]
    if extra or absent:
        msg = f"psii_dataarray needs dims {wanted}; the selection has {list(image.dims)}: " + (
            f"select one value of {extra} first" if extra else f"{absent} are missing"
        )
        raise LayoutError(msg)
    order = ["y", "x", frame, *([measurement] if measurement else [])]
    data = image.transpose(*order).data
    if measurement is None:
        data = data[..., None]
    labels = _labels(image, frame, frame_labels)
    measurements = (
        [str(v) for v in image[measurement].values] if measurement is not None else ["t0"]
    )
    out = xr.DataArray(
        data,
        dims=("x", "y", "frame_label", "measurement"),
        coords={
            "frame_label": labels,
            "frame_num": ("frame_label", np.arange(len(labels))),
            "measurement": measurements,
        },
        name=name,
    )
    out.attrs["long_name"] = long_name or LONG_NAMES[name]
    return out


def _labels(
    image: xr.DataArray, frame: str, frame_labels: str | Mapping[Any, str] | Sequence[str] | None
) -> list[str]:
    values = list(image[frame].values) if frame in image.coords else list(range(image.sizes[frame]))
    if frame_labels is None:
        labels = [str(v) for v in values]
    elif isinstance(frame_labels, str):
        if frame_labels not in image.coords or image[frame_labels].dims != (frame,):
            msg = f"frame_labels {frame_labels!r} is not a coordinate along {frame!r}"
            raise LayoutError(msg)
        labels = [str(v) for v in image[frame_labels].values]
    elif isinstance(frame_labels, Mapping):
        missing = [v for v in values if v not in frame_labels]
        if missing:
            msg = f"frame_labels has no label for frame(s) {missing}"
            raise LayoutError(msg)
        labels = [str(frame_labels[v]) for v in values]
    else:
        labels = [str(v) for v in frame_labels]
    if len(labels) != len(values) or len(set(labels)) != len(labels) or "" in labels:
        msg = f"frame labels {labels} must be {len(values)} distinct, non-empty names"
        raise LayoutError(msg)
    return labels
