"""The groups of a manifest and running a function on one (here, in a thread, on a worker)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..access import Access
from ..errors import MapError
from ..manifest import Manifest

UNSAFE = re.compile(r"[^\w.\-]+")  # characters left out of the names of files and modules
ERROR = "error"  # the column naming what went wrong in a group ("" when it worked)
GROUP = "group"  # the column naming the group of a manifest with several
RESULT = "result"  # the column of a function that returns one value, not a mapping


@dataclass(frozen=True)
class _Group:
    node: str  # the manifest group (node path)
    isel: dict[str, int]  # positions along the by dims of that node
    labels: dict[str, Any]  # the by labels (and the group's name when there are several)

    def key(self) -> tuple[str, ...]:
        return tuple(_text(v) for v in self.labels.values())


def _text(value: Any) -> str:
    """A label as the results table writes it, and a rerun reads it back (CSV or Parquet)."""
    import pandas as pd

    if isinstance(value, np.datetime64 | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    return str(value.item() if isinstance(value, np.generic) else value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.datetime64):
        import pandas as pd

        return pd.Timestamp(value)
    return value.item() if isinstance(value, np.generic) else value


def _groups(m: Manifest, by: Sequence[str], nodes: Sequence[Any]) -> list[_Group]:
    """Every combination of the ``by`` labels with at least one image, node by node."""
    # several groups need a column saying which, unless the by fields already say it
    several = len(m.nodes) > 1 and not all(k in by for n in m.nodes for k in n.attrs)
    out = []
    for node in nodes:
        missing = [d for d in by if d not in node.dims and d not in node.attrs]
        if missing:
            where = f"group {node.path!r}" if node.path else "the dataset"
            fields = ", ".join(node.dims) + (
                f"; group fields: {', '.join(node.attrs)}" if node.attrs else ""
            )
            msg = f"by: {', '.join(map(repr, missing))} is not a dim of {where} (dims: {fields})"
            raise MapError(msg)
        dims = [d for d in by if d in node.dims]
        axes = [node.dims.index(d) for d in dims]
        present = node.file_index >= 0
        other = tuple(i for i in range(present.ndim) if i not in axes)
        hit = present.any(axis=other) if other else present
        hit = np.transpose(hit, np.argsort(np.argsort(axes))) if axes else hit
        for row in np.argwhere(hit) if dims else [()]:
            isel = {d: int(i) for d, i in zip(dims, row, strict=True)}
            labels: dict[str, Any] = {GROUP: node.path} if several else {}
            for d in by:
                if d in isel:
                    coord = node.coords.get(d)
                    labels[d] = _plain(coord.values[isel[d]]) if coord is not None else isel[d]
                else:
                    labels[d] = node.attrs[d]
            if dims or present.any():
                out.append(_Group(node.path, isel, labels))
    return out


# -- running one group (here, in a thread, or on a worker) -----------------------------------


@dataclass
class _Context:
    """What every task needs: the manifest (a path or the object) and the function."""

    manifest: Any
    access: Access
    func: Callable[[Any], Any]
    datasets: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # the function through cloudpickle, whatever pickler sends the context: a function
        # of an installed module goes by reference, one from a user's file (registered by
        # _remote_by_value) by value, as workers cannot import that file's module
        import cloudpickle

        state = {**self.__dict__, "datasets": {}}  # each worker opens its own
        state["func"] = cloudpickle.dumps(self.func)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import cloudpickle

        self.__dict__.update(state, func=cloudpickle.loads(state["func"]))

    def dataset(self, group: str) -> Any:
        ds = self.datasets.get(group)
        if ds is None:
            from ..api import open_dataset

            ds = self.datasets[group] = open_dataset(
                self.manifest, group=group or None, access=self.access
            )
        return ds


@dataclass
class _Outcome:
    values: dict[str, Any]
    images: dict[str, np.ndarray]
    error: str


def _run(context: _Context, group: _Group) -> _Outcome:
    """One group: never raises (what went wrong is the outcome's error)."""
    try:
        ds = context.dataset(group.node)
        selected = ds.isel(group.isel) if group.isel else ds
    except Exception as e:
        return _Outcome({}, {}, f"{type(e).__name__}: {e}")
    return _call(context, selected, _yx(ds))


def _call(context: _Context, selected: Any, yx: tuple[int, int]) -> _Outcome:
    try:
        values, images = _split(context.func(selected), yx)
    except Exception as e:  # one failing group never stops the others
        return _Outcome({}, {}, f"{type(e).__name__}: {e}")
    return _Outcome(values, images, "")


def _run_block(context: _Context, block: Sequence[_Group]) -> list[_Outcome]:
    """Neighbouring groups (see :func:`blocks`) with their pixels and coordinates read in
    one call per array.

    A small group's read is mostly the per-call cost of zarr and xarray (about 4 ms for ten
    small PNGs, where one call over many groups reads them at a third of that), and building
    each group's dataset from the lazy one costs about 0.8 ms more; here the block is loaded
    once and each group is its slice, in memory. A block whose read fails is run group by
    group, so only the group with the bad file fails.
    """
    if len(block) == 1:
        return [_run(context, block[0])]
    first, last = block[0].isel, block[-1].isel
    dim = next(d for d in first if first[d] != last[d])
    try:
        ds = context.dataset(block[0].node)
        sel: dict[str, Any] = dict(first)
        sel[dim] = slice(first[dim], last[dim] + 1)
        loaded = ds.isel(sel).load()  # pixels and coordinates of the block, in memory
    except Exception:
        return [_run(context, g) for g in block]
    yx = _yx(ds)
    return [_call(context, loaded.isel({dim: j}), yx) for j in range(len(block))]


def blocks(groups: Sequence[_Group], nodes: Mapping[str, Any], most: int) -> list[list[_Group]]:
    """``groups`` in runs that one read can serve: same node, the same positions but along
    one dim, where they follow each other; at most ``most`` bytes of pixels and 64 groups."""
    out: list[list[_Group]] = []
    size = 0
    for group in groups:
        node = nodes[group.node]
        outer = [s for d, s in zip(node.dims, node.shape, strict=True) if d not in group.isel]
        pixels = int(np.prod(outer, dtype=np.int64)) * int(np.prod(node.image.shape))
        nbytes = pixels * np.dtype(node.image.dtype).itemsize
        run = out[-1] if out else None
        if run and _follows(run, group) and size + nbytes <= most and len(run) < 64:
            run.append(group)
            size += nbytes
        else:
            out.append([group])
            size = nbytes
    return out


def _follows(run: Sequence[_Group], group: _Group) -> bool:
    first, last = run[0], run[-1]
    if group.node != first.node or set(group.isel) != set(first.isel):
        return False
    moved = [d for d in group.isel if group.isel[d] != last.isel[d]]
    if len(moved) != 1 or group.isel[moved[0]] != last.isel[moved[0]] + 1:
        return False
    along = [d for d in first.isel if first.isel[d] != last.isel[d]]
    return not along or along == moved


def _yx(ds: Any) -> tuple[int, int]:
    return int(ds.sizes["y"]), int(ds.sizes["x"])


def _split(result: Any, yx: tuple[int, int]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The scalars and the images (arrays whose first two axes are the image's y, x)."""
    if result is None:
        return {}, {}
    if hasattr(result, "to_dict") and not hasattr(result, "dims"):  # a pandas Series
        result = result.to_dict()
    if not isinstance(result, Mapping):
        result = {RESULT: result}
    values: dict[str, Any] = {}
    images: dict[str, np.ndarray] = {}
    for name, value in result.items():
        if not isinstance(name, str) or not name or name in (ERROR, GROUP):
            msg = f"result keys must be names other than {ERROR!r} and {GROUP!r}, not {name!r}"
            raise TypeError(msg)
        if hasattr(value, "dims") and hasattr(value, "transpose") and {"y", "x"} <= set(value.dims):
            value = value.transpose("y", "x", ...)
        array = np.asarray(value)
        if array.ndim == 0:
            values[name] = _plain(array[()])
        elif array.ndim in (2, 3) and array.shape[:2] == yx and array.dtype.kind in "biuf":
            images[name] = array
        else:
            msg = (
                f"{name!r}: a {array.dtype} array of shape {array.shape} is neither a scalar "
                f"nor an image of the group's {yx[0]} x {yx[1]} pixels"
            )
            raise TypeError(msg)
    return values, images
