"""The central model of a layout: a :class:`Node` (one group and its image array, with the
file of every slot) and its :class:`Coord`\\ s. Values only; :func:`~.arrange.arrange`
builds them, the manifest saves them, the hierarchy describes them to zarr."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..probe import ImageInfo
from .spec import Value

__all__ = ["Coord", "Node"]


@dataclass(frozen=True, slots=True)
class Coord:
    """A coordinate: its dims and its values, flat in C order; ``None`` marks a hole."""

    dims: tuple[str, ...]
    kind: Literal["int", "float", "str", "datetime"]
    values: tuple[Value | None, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One group of the hierarchy and its image array.

    ``file_index`` has the outer shape and holds, per slot, the index of the file in the manifest's
    file table, or -1 for a hole.
    """

    path: str
    attrs: Mapping[str, Any]
    dims: tuple[str, ...]
    image: ImageInfo
    coords: Mapping[str, Coord]
    file_index: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.file_index.shape)

    @property
    def image_dims(self) -> tuple[str, ...]:
        """Outer dims followed by the image's own axes: ``y, x``, ``c`` for channels, ``z``
        for volume planes and ``page`` for the pages of a multi-page file; an image axis whose
        name an outer dim already uses (microscopy names: ``t, c, z``) is renamed (``c`` ->
        ``channel``, ``z`` -> ``plane``, ...)."""
        taken = set(self.dims)
        inner = []
        for axis in self.image.dims:
            name = next((n for n in _AXIS_NAMES.get(axis, (axis,)) if n not in taken), axis)
            taken.add(name)
            inner.append(name)
        return self.dims + tuple(inner)


# names an image axis takes, in order of preference, when an outer dim already has its name
_AXIS_NAMES = {
    "c": ("c", "channel", "sample", "image_c"),
    "z": ("z", "plane", "image_z"),
    "p": ("page", "image_page"),
}
