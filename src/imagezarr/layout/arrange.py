"""Layout: matched files → groups, arrays, dims and coordinates.

Pure: takes values, returns values, touches no file. :func:`arrange` turns matched files and
their probed :class:`ImageInfo` into :class:`Node`\\ s, one per group, each holding one image
array with labeled outer dims; a field that is not a dim becomes a coordinate over the
fewest dims that determine it.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import numpy as np

from ..errors import DuplicateIndexError, InconsistentImagesError, LayoutError
from ..probe import ImageInfo
from .infer import Choice, choose_dims
from .match import _sort_key, natural_key
from .model import Coord, Node
from .spec import LayoutSpec, LayoutWarning, Value

__all__ = ["Coord", "Node", "arrange", "image_label", "minority_images"]  # Coord, Node: .model


def _kind_of(v: Value) -> str:
    if isinstance(v, datetime):
        return "datetime-tz" if v.tzinfo is not None else "datetime"
    if isinstance(v, bool | str):
        return "str"
    return "int" if isinstance(v, int) else "float"


_PLAIN_KINDS: dict[type, Literal["int", "float", "str"]] = {int: "int", float: "float", str: "str"}


def _kind(values: Sequence[Value], name: str = "") -> Literal["int", "float", "str", "datetime"]:
    """The one kind all values share; ints mixed with floats are floats; else LayoutError."""
    exact = {type(v) for v in values}
    if len(exact) == 1 and (kind := _PLAIN_KINDS.get(exact.pop())) is not None:
        return kind  # one plain type: a set of types is much cheaper than a kind per value
    kinds = {_kind_of(v) for v in values} or {"str"}
    if kinds == {"int", "float"}:
        return "float"
    if kinds == {"datetime-tz"}:
        return "datetime"
    if len(kinds) > 1:
        examples = {_kind_of(v): v for v in values}
        msg = (
            f"field {name!r} mixes value kinds {sorted(kinds)} (e.g. "
            + ", ".join(f"{v!r}" for v in examples.values())
            + "); one field needs one kind: give it a type, or make the derivation or lookup "
            "return one kind"
        )
        raise LayoutError(msg)
    return kinds.pop()  # type: ignore[return-value]


def _group_name(values: Sequence[Value]) -> str:
    parts = []
    for v in values:
        text = v.isoformat() if isinstance(v, datetime) else str(v)
        # zarr node names may not contain "/" nor start with "__"
        text = text.replace("/", "_") or "_"
        if text in ("zarr.json", ".", ".."):
            msg = (
                f"group value {text!r} cannot name a zarr group (it would hide or escape "
                "other nodes); choose another group_by field or map the value with a lookup"
            )
            raise LayoutError(msg)
        parts.append("g" + text if text.startswith("__") else text)
    return "/".join(parts)


def arrange(
    paths: Sequence[str],
    fields: Sequence[Mapping[str, Value]],
    infos: Sequence[ImageInfo],
    spec: LayoutSpec,
    *,
    notes: list[str] | None = None,
    previous: Sequence[Node] = (),
    keep_labels: bool = False,
) -> list[Node]:
    """Arrange files into groups of labeled grids.

    ``paths[i]``, ``fields[i]`` and ``infos[i]`` describe file ``i`` (its index in the file
    table). Without ``spec.dims`` the dims are chosen (:func:`choose_dims`); lines saying
    what was chosen and why are appended to ``notes``. Raises :class:`DuplicateIndexError`
    or :class:`InconsistentImagesError`. ``previous`` are the nodes of an earlier scan
    (an update): their labels keep their order and only new labels are sorted in; with
    ``keep_labels`` a label whose files are all gone stays, as a slice of holes, instead of
    leaving its coordinate (so shapes only grow); dims the earlier scan chose are kept while
    the files fit them.
    """
    groups = _group_members(fields, spec.group_by)
    if spec.on_mismatch == "split":
        groups = _split_by_image(groups, infos)
    candidates = _candidates(fields, spec)
    build = functools.partial(
        _build_nodes, groups, paths, fields, infos, previous=previous, keep_labels=keep_labels
    )
    kept = _kept_dims(previous, candidates) if spec.dims is None else None
    if kept is not None:
        # an update keeps the dims the first scan chose while the files still fit them (one
        # file per slot): a day more of images must not reshape the arrays
        try:
            nodes = build(replace(spec, dims=kept))
        except DuplicateIndexError:
            pass  # they no longer fit: chosen again below
        else:
            if notes is not None:
                notes.append(f"dims kept from the manifest: ({', '.join(kept)})")
            return nodes
    choice = None
    if spec.dims is None and candidates is not None:
        choice = choose_dims(fields, candidates, groups=list(groups.values()))
        spec = replace(spec, dims=choice.dims)
    nodes = build(spec)
    if choice is not None and notes is not None:
        notes.extend(_explain(choice, nodes))
    elif candidates is not None and spec.dims is not None and fields:
        _warn_sparse(nodes, fields, candidates, list(groups.values()))
    return nodes


def _kept_dims(
    previous: Sequence[Node], candidates: Sequence[str] | None
) -> tuple[str, ...] | None:
    """The dims every earlier node had, when they are all still fields to choose from."""
    earlier = {n.dims for n in previous}
    if candidates is None or len(earlier) != 1:
        return None
    dims = earlier.pop()
    return dims if all(d in candidates for d in dims) else None


def _build_nodes(
    groups: Mapping[tuple[Any, ...], list[int]],
    paths: Sequence[str],
    fields: Sequence[Mapping[str, Value]],
    infos: Sequence[ImageInfo],
    spec: LayoutSpec,
    *,
    previous: Sequence[Node],
    keep_labels: bool,
) -> list[Node]:
    """One node per group, in group order, laid out along ``spec.dims``."""
    nodes = []
    names: dict[str, tuple[Any, ...]] = {}
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        path = _group_name(key) if key else ""
        if path in names:
            msg = (
                f"group values {names[path]} and {key} give the same group name {path!r}: "
                "choose another group_by field"
            )
            raise LayoutError(msg)
        names[path] = key
        attrs = {g: _jsonable(v) for g, v in zip(spec.group_by, key, strict=False)}
        known = {c: v.values for n in previous if n.path == path for c, v in n.coords.items()}
        nodes.append(
            _build_node(path, attrs, groups[key], paths, fields, infos, spec, known, keep_labels)
        )
    return nodes


def _group_members(
    fields: Sequence[Mapping[str, Value]], group_by: Sequence[str]
) -> dict[tuple[Any, ...], list[int]]:
    if not group_by:
        return {(): list(range(len(fields)))}
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, f in enumerate(fields):
        groups.setdefault(tuple(f[g] for g in group_by), []).append(i)
    return groups


def image_label(info: ImageInfo) -> str:
    """A group name for one kind of image: ``png-480x640-uint8``, ``jpeg-480x640x3-uint8``."""
    return f"{info.format}-{'x'.join(map(str, info.shape))}-{info.dtype}"


def _split_by_image(
    groups: Mapping[tuple[Any, ...], list[int]], infos: Sequence[ImageInfo]
) -> dict[tuple[Any, ...], list[int]]:
    """``on_mismatch="split"``: a group holding several kinds of image gets one subgroup per
    kind, named by :func:`image_label`; a group of one kind stays as it is."""
    out: dict[tuple[Any, ...], list[int]] = {}
    for key, members in groups.items():
        kinds: dict[tuple[Any, ...], list[int]] = {}
        for i in members:
            kinds.setdefault(_image_signature(infos[i]), []).append(i)
        if len(kinds) == 1:
            out[key] = members
            continue
        for kind_members in kinds.values():
            out[(*key, image_label(infos[kind_members[0]]))] = kind_members
    return out


def minority_images(
    fields: Sequence[Mapping[str, Value]], infos: Sequence[ImageInfo], spec: LayoutSpec
) -> list[tuple[int, str]]:
    """``on_mismatch="skip"``: files whose kind of image is not the most common of their
    group, each with what it is and what most files are."""
    out = []
    for members in _group_members(fields, spec.group_by).values():
        kinds: dict[tuple[Any, ...], list[int]] = {}
        for i in members:
            kinds.setdefault(_image_signature(infos[i]), []).append(i)
        if len(kinds) < 2:
            continue
        common = max(kinds.values(), key=len)
        usual = image_label(infos[common[0]])
        out += [
            (i, f"{image_label(infos[i])}, while most files are {usual}")
            for files in kinds.values()
            if files is not common
            for i in files
        ]
    return sorted(out)


def _candidates(fields: Sequence[Mapping[str, Value]], spec: LayoutSpec) -> list[str] | None:
    """The fields dims may be chosen from, in pattern order; None when files have no fields
    of their own (no pattern, no table: one dim ``file``)."""
    if spec.pattern is None and not spec.tables:
        return None
    known = dict.fromkeys(spec.pattern_fields())
    for row in fields[:1]:
        known.update(dict.fromkeys(row))
    return [f for f in known if f not in spec.group_by]


def _explain(choice: Choice, nodes: Sequence[Node]) -> list[str]:
    dims = ", ".join(choice.dims) or "none: one image per group"
    # counted on the grids built (an update may keep labels without files as holes)
    slots = sum(int(n.file_index.size) for n in nodes)
    holes = sum(int((n.file_index < 0).sum()) for n in nodes)
    lines = [
        f"dims chosen: ({dims}); {slots:,} slot(s), {holes:,} hole(s); "
        "pass dims (--dims) to choose yourself"
    ]
    coords = nodes[0].coords if nodes else {}
    for field, why in choice.demoted.items():
        over = coords[field].dims if field in coords else ()
        where = f"a coordinate over ({', '.join(over)})" if over else "a scalar coordinate"
        lines.append(f"{field}: not a dim ({why}); {where}")
    return lines


def _warn_sparse(
    nodes: Sequence[Node],
    fields: Sequence[Mapping[str, Value]],
    candidates: Sequence[str],
    groups: Sequence[Sequence[int]],
) -> None:
    """Warn when the dims given leave most of the grid empty, and show the inferred layout."""
    slots = sum(int(n.file_index.size) for n in nodes)
    if slots <= 2 * len(fields):
        return
    choice = choose_dims(fields, candidates, groups=groups)
    given = ", ".join(nodes[0].dims) if nodes else ""
    msg = (
        f"dims ({given}) leave {slots - len(fields)} of {slots} slots empty; without dims "
        f"imagezarr would choose ({', '.join(choice.dims)}) with {choice.holes} hole(s)"
    )
    warnings.warn(msg, LayoutWarning, stacklevel=3)


def _jsonable(v: Value) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _build_node(
    path: str,
    attrs: Mapping[str, Any],
    members: Sequence[int],
    paths: Sequence[str],
    fields: Sequence[Mapping[str, Value]],
    infos: Sequence[ImageInfo],
    spec: LayoutSpec,
    known: Mapping[str, Sequence[Value]],
    keep_labels: bool = False,
) -> Node:
    where = f"array {path + '/image' if path else 'image'!r}"
    image = _common_image(where, members, paths, infos)
    dims = spec.outer_dims()
    columns = {d: [fields[i][d] for i in members] for d in dims}
    for d in dims:
        _kind([v for v in columns[d] if v is not None], d)  # one kind, so values sort
    labels = {d: _sorted_labels(columns[d], known.get(d, ()), keep_labels) for d in dims}
    shape = tuple(len(labels[d]) for d in dims)
    chunks = np.full(shape, -1, dtype=np.int64)
    # per dim, the label position of every member; zipped, the slot of every member
    positions = []
    for d in dims:
        where_of = {v: k for k, v in enumerate(labels[d])}
        positions.append([where_of[v] for v in columns[d]])
    others = [f for f in (fields[members[0]] if members else {}) if f not in dims]
    others = [f for f in others if f not in spec.group_by]
    if not others and _fill_unique(chunks, members, positions):
        slots: dict[tuple[int, ...], list[int]] = {}  # not needed: no field left to place
    else:
        slots = _fill_slots(chunks, members, positions)
    clashes = [(idx, files) for idx, files in slots.items() if len(files) > 1]
    if clashes:
        _raise_duplicates(where, dims, labels, clashes, paths, fields)
    coords: dict[str, Coord] = {
        d: Coord((d,), _kind([v for v in labels[d] if v is not None], d), tuple(labels[d]))
        for d in dims
    }
    for name in others:
        coords[name] = _smallest_coord(name, dims, shape, slots, fields)
    return Node(path, dict(attrs), dims, image, coords, chunks)


def _sorted_labels(
    values: Sequence[Value], known: Sequence[Value] = (), keep: bool = False
) -> list[Value]:
    """The distinct values in label order; ``known`` is the label order of an earlier scan,
    kept for the values still present (all of them with ``keep``), with the new ones sorted
    in among them.

    >>> _sorted_labels(["A10", "A2", "A1", "A2"])
    ['A1', 'A2', 'A10']
    >>> _sorted_labels(["A3", "A10", "A1"], known=["A1", "A2", "A10"])
    ['A1', 'A3', 'A10']
    """
    # dict.fromkeys keeps the input order, which is nearly sorted already (files come in path
    # order), so the sort is close to linear; a set's hash order made it 40% of arrange
    distinct = dict.fromkeys(values)
    unique = list(distinct)
    kinds = {type(v) for v in unique}
    before = {type(v) for v in known}
    # an earlier order is only reused for labels of the very same types (1 == 1.0 == True);
    # None (a value a lookup did not find) goes with any
    now, then = kinds - {type(None)}, before - {type(None)}
    reuse = bool(known) and (now == then or not now or not then)
    # as _sort_key orders them; for strings without a second call per value
    key = natural_key if (kinds | before if reuse else kinds) == {str} else _sort_key
    if not reuse:
        return sorted(unique, key=key)  # type: ignore[arg-type]
    # natural keys of 100,000 labels cost most of an update: sort the new labels only and
    # find their places among the kept ones by bisection (a few keys each)
    kept = list(known) if keep else [v for v in known if v in distinct]
    fresh = sorted(distinct.keys() - set(kept), key=key)  # type: ignore[arg-type]
    out: list[Value] = []
    start = 0
    for v in fresh:
        at = bisect.bisect_right(kept, key(v), lo=start, key=key)  # type: ignore[arg-type]
        out += kept[start:at]
        out.append(v)
        start = at
    return out + kept[start:]


def _fill_unique(chunks: np.ndarray, members: Sequence[int], positions: list[list[int]]) -> bool:
    """Write every member into its slot of ``chunks`` in one go; False (nothing written) if
    two members share a slot, or there are no dims."""
    if not positions or not members:
        return False
    flat = np.ravel_multi_index(np.array(positions, dtype=np.intp), chunks.shape)
    ordered = np.sort(flat)  # not np.bincount: that allocates the whole, maybe sparse, grid
    if (ordered[1:] == ordered[:-1]).any():
        return False
    chunks.reshape(-1)[flat] = members
    return True


def _fill_slots(
    chunks: np.ndarray, members: Sequence[int], positions: list[list[int]]
) -> dict[tuple[int, ...], list[int]]:
    """Group members by slot and write the last of each into ``chunks``."""
    dims = len(positions)
    slots: dict[tuple[int, ...], list[int]] = {}
    for i, idx in zip(
        members, zip(*positions, strict=True) if dims else [()] * len(members), strict=True
    ):
        slots.setdefault(idx, []).append(i)
    if slots and not dims:  # no outer dims: one slot holding the group's one image
        chunks[()] = slots[()][-1]
    elif slots:  # one vectorised assignment: per-slot numpy indexing costs a microsecond each
        where_ = np.array(list(slots), dtype=np.intp).reshape(len(slots), dims)
        chunks[tuple(where_.T)] = [files[-1] for files in slots.values()]
    return slots


def _common_image(
    where: str, members: Sequence[int], paths: Sequence[str], infos: Sequence[ImageInfo]
) -> ImageInfo:
    # probes of one scan often share ImageInfo objects: compare each distinct one once
    distinct = list({id(infos[i]): infos[i] for i in members}.values())
    if len({_image_signature(info) for info in distinct}) == 1:
        return infos[members[0]]
    kinds: dict[tuple[Any, ...], list[int]] = {}
    for i in members:
        kinds.setdefault(_image_signature(infos[i]), []).append(i)
    if len(kinds) > 1:
        lines = [
            f"{len(files)} x {infos[files[0]].format} {tuple(infos[files[0]].shape)} "
            f"{infos[files[0]].dtype} (e.g. {paths[files[0]]!r})"
            for files in sorted(kinds.values(), key=lambda f: -len(f))
        ]
        raise InconsistentImagesError(
            f"images of {where} differ; one array needs one format, shape and dtype: "
            + "; ".join(lines)
            + ". Split them with group_by or a narrower glob, or pass on_mismatch='skip' "
            "(--on-mismatch skip) to leave out the odd ones or 'split' to give each kind its "
            "own group."
        )
    return infos[members[0]]


def _image_signature(info: ImageInfo) -> tuple[Any, ...]:
    """What images of one array must share."""
    config = info.codec.get("configuration")
    return (
        info.format,
        tuple(info.shape),
        info.dtype,
        info.axes,
        info.codec.get("name"),
        info.palette,
        None if config is None else json.dumps(config, sort_keys=True),
    )


def _raise_duplicates(
    where: str,
    dims: Sequence[str],
    labels: Mapping[str, Sequence[Value]],
    clashes: Sequence[tuple[tuple[int, ...], list[int]]],
    paths: Sequence[str],
    fields: Sequence[Mapping[str, Value]],
) -> None:
    shown = []
    for idx, files in clashes[:2]:
        slot = ", ".join(f"{d}={labels[d][k]!s}" for d, k in zip(dims, idx, strict=True))
        shown.append(f"({slot}): " + ", ".join(repr(paths[i]) for i in files[:3]))
    # the fields whose values differ inside a clashing slot are the ones that tell files apart
    apart = [
        f
        for f in fields[clashes[0][1][0]]
        if f not in dims and len({repr(fields[i][f]) for i in clashes[0][1]}) > 1
    ]
    if apart:
        fix = (
            f"They differ in {', '.join(map(repr, apart))}: add one of them to dims "
            f"(dims=({', '.join(map(repr, [*dims, apart[0]]))}), CLI --dims "
            f"{','.join([*dims, apart[0]])}), or leave dims out to have them chosen."
        )
    else:
        fix = "No field tells them apart: extend the pattern so that one does."
    raise DuplicateIndexError(
        f"{len(clashes)} slot(s) of {where} with dims {list(dims)} have more than one file. "
        f"{fix} For example " + "; ".join(shown)
    )


def _determined_by(
    subset: Sequence[int],
    slots: Mapping[tuple[int, ...], Sequence[int]],
    fields: Sequence[Mapping[str, Value]],
    name: str,
) -> dict[tuple[int, ...], Value] | None:
    """The field's value per position along ``subset`` dims, or None if it is not a function."""
    seen: dict[tuple[int, ...], Value] = {}
    for idx, files in slots.items():
        sub = tuple(idx[k] for k in subset)
        for i in files:
            value = fields[i][name]
            if seen.setdefault(sub, value) != value:
                return None
    return seen


def _smallest_coord(
    name: str,
    dims: Sequence[str],
    shape: Sequence[int],
    slots: Mapping[tuple[int, ...], Sequence[int]],
    fields: Sequence[Mapping[str, Value]],
) -> Coord:
    """A non-dim field becomes a coordinate over the smallest set of dims that determines it."""
    for size in range(len(dims) + 1):
        for subset in itertools.combinations(range(len(dims)), size):
            seen = _determined_by(subset, slots, fields, name)
            if seen is None:
                continue
            sub_shape = [shape[k] for k in subset]
            flat: list[Value | None] = [None] * math.prod(sub_shape)
            for sub, value in seen.items():
                flat[int(np.ravel_multi_index(sub, sub_shape)) if sub else 0] = value
            kind = _kind([v for v in flat if v is not None], name)
            return Coord(tuple(dims[k] for k in subset), kind, tuple(flat))
    msg = "the full set of dims always determines a field"
    raise AssertionError(msg)  # pragma: no cover
