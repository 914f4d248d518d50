"""Layout: choosing the outer dims when none are given.

Among the *minimal* sets of fields that identify every file (no two files share a slot, and
no field can be dropped), prefer grids with few holes; among those, the most factorized one
(the smallest sum of dim lengths: many short labelled dims rather than one long one). A
datetime field becomes a dim only when nothing else identifies the files: a timestamp per
image is a coordinate, not an axis (a date, all at midnight, is a label like any other).
Fields left out become coordinates over the dims that
determine them, as for any field that is not a dim.

Pure and vectorised: each field is coded once as integers, a candidate set is checked by
combining codes into one integer per file, and sets whose grid is smaller than the number of
files are rejected without looking at the files.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time

import numpy as np

from .match import _sort_key
from .spec import Value

__all__ = ["Choice", "choose_dims", "rank_dims"]

HOLE_TOLERANCE = 0.10  # grids this much emptier than the densest still count as dense
MAX_SEARCH_FIELDS = 14  # above this, subsets are searched greedily, not exhaustively
_INT64_LIMIT = 2**62
_MIDNIGHT = time(0)


@dataclass(frozen=True, slots=True)
class Choice:
    """The dims chosen, with the facts that explain the choice."""

    dims: tuple[str, ...]
    slots: int  # grid size over all groups
    files: int
    demoted: Mapping[str, str]  # field -> why it is not a dim

    @property
    def holes(self) -> int:
        return self.slots - self.files


def _codes(values: Sequence[Value | None]) -> tuple[np.ndarray, int]:
    """Integer code per value (equal values, equal codes) and the number of distinct values."""
    kinds = {type(v) for v in values}
    if kinds == {int} or kinds == {str}:
        # one plain kind: numpy's sort-based unique in C; a dict loop cost most of inference
        uniques, codes = np.unique(np.array(values), return_inverse=True)
        return codes.astype(np.int64, copy=False).ravel(), len(uniques)
    index: dict[object, int] = {}
    codes = np.fromiter(
        (index.setdefault(_hashable(v), len(index)) for v in values), np.int64, len(values)
    )
    return codes, len(index)


def _hashable(v: Value | None) -> object:
    return (type(v).__name__, _sort_key(v)) if isinstance(v, float) else v


def _unique(codes: Sequence[np.ndarray], cards: Sequence[int]) -> bool:
    """No two rows share the same combination of codes."""
    if not codes:
        return len(codes) == 0
    combined = np.zeros(len(codes[0]), np.int64)
    for c, k in zip(codes, cards, strict=True):
        combined = combined * k + c
    combined.sort()
    return not bool((combined[1:] == combined[:-1]).any())


def choose_dims(
    fields: Sequence[Mapping[str, Value]],
    candidates: Sequence[str],
    *,
    groups: Sequence[Sequence[int]] | None = None,
) -> Choice:
    """Choose outer dims among ``candidates`` for files described by ``fields``.

    The first of :func:`rank_dims`; see there.
    """
    return rank_dims(fields, candidates, groups=groups, limit=1)[0]


def rank_dims(
    fields: Sequence[Mapping[str, Value]],
    candidates: Sequence[str],
    *,
    groups: Sequence[Sequence[int]] | None = None,
    limit: int = 5,
) -> list[Choice]:
    """Candidate outer dims among ``candidates``, best first (at most ``limit``).

    ``groups`` (member indices per group, from ``group_by``) makes every group its own grid:
    a set of fields must identify the files inside each group, and holes are counted per
    group.

    >>> files = [{"plant": p, "frame": f, "t": datetime(2020, 1, 1, p, f)}
    ...          for p in range(3) for f in range(2)]
    >>> c = rank_dims(files, ["plant", "frame", "t"])[0]
    >>> c.dims, c.holes, dict(c.demoted)
    (('plant', 'frame'), 0, {'t': 'a time; a dim only when nothing else tells the files apart'})
    """
    n = len(fields)
    groups = [list(range(n))] if groups is None else [list(g) for g in groups]
    gid = np.zeros(n, np.int64)
    for k, members in enumerate(groups):
        gid[members] = k
    coded = {f: _codes([row.get(f) for row in fields]) for f in candidates}
    # distinct values of each field inside each group: the grid lengths per group
    per_group = {
        f: np.array([len(np.unique(coded[f][0][g])) if g else 0 for g in groups])
        for f in candidates
    }
    is_time = {f: _is_time([row.get(f) for row in fields[:256]]) for f in candidates}
    usable = [f for f in candidates if coded[f][1] > 1]  # a constant never tells files apart
    sizes = [len(g) for g in groups]

    def identifies(subset: tuple[str, ...]) -> bool:
        slots = _slots(subset)
        if any(s < m for s, m in zip(slots, sizes, strict=True)):
            return False  # fewer slots than files somewhere: cannot be unique (pigeonhole)
        cards = [len(groups)] + [coded[f][1] for f in subset]
        if math.prod(cards) >= _INT64_LIMIT:
            rows = np.stack([gid] + [coded[f][0] for f in subset], axis=1)
            return len(np.unique(rows, axis=0)) == n
        return _unique([gid] + [coded[f][0] for f in subset], cards)

    def _slots(subset: tuple[str, ...]) -> list[int]:
        out = np.ones(len(groups), dtype=object)
        for f in subset:
            out = out * per_group[f].astype(object)
        return [int(x) for x in out]

    minimal = _minimal_sets(usable, identifies, is_time)
    order = {f: k for k, f in enumerate(candidates)}
    if not minimal:  # nothing identifies the files: every usable field, and let arrange explain
        ranked = [tuple(usable)]
    else:
        scored = [(s, sum(_slots(s)), _length_sum(s, per_group)) for s in minimal]
        densest = min(slots for _, slots, _ in scored)
        scored.sort(
            key=lambda t: (
                (t[1] - n) / max(1, t[1]) > (densest - n) / max(1, densest) + HOLE_TOLERANCE,
                t[2],
                tuple(sorted(order[f] for f in t[0])),
            )
        )
        ranked = [s for s, _, _ in scored]
    choices = []
    for dims in ranked[:limit]:
        best = tuple(sorted(dims, key=order.__getitem__))
        demoted = {}
        for f in candidates:
            if f in best:
                continue
            if coded[f][1] <= 1:
                demoted[f] = "the same for every file"
            elif is_time[f]:
                demoted[f] = "a time; a dim only when nothing else tells the files apart"
            else:
                demoted[f] = "follows from the dims"
        choices.append(Choice(best, sum(_slots(best)), n, demoted))
    return choices


def _is_time(values: Sequence[Value | None]) -> bool:
    """A time of day per image (a coordinate), not a date: days at midnight (a night's date,
    ``day(timestamp)``) label runs of images as a plant or a step does."""
    stamps = [v for v in values if isinstance(v, datetime)]
    return bool(stamps) and any(v.time() != _MIDNIGHT for v in stamps)


def _length_sum(subset: tuple[str, ...], per_group: Mapping[str, np.ndarray]) -> int:
    return int(sum(per_group[f].max(initial=0) for f in subset))


def _minimal_sets(
    usable: Sequence[str],
    identifies: object,
    is_time: Mapping[str, bool],
) -> list[tuple[str, ...]]:
    """Minimal identifying sets; those without a time field when any exist."""
    check = identifies  # a callable; typed loosely to keep the signature short
    for pool in ([f for f in usable if not is_time[f]], list(usable)):
        found: list[tuple[str, ...]] = []
        if len(pool) > MAX_SEARCH_FIELDS:
            found = _greedy(pool, check)
        else:
            for size in range(len(pool) + 1):
                for subset in itertools.combinations(pool, size):
                    if any(set(f) <= set(subset) for f in found):
                        continue  # a superset of an identifying set is not minimal
                    if check(subset):  # type: ignore[operator]
                        found.append(subset)
        if found:
            return found
    return []


def _greedy(pool: Sequence[str], check: object) -> list[tuple[str, ...]]:
    """Drop fields one by one while the rest still identifies the files."""
    chosen = list(pool)
    if not check(tuple(chosen)):  # type: ignore[operator]
        return []
    for f in list(reversed(pool)):
        trial = tuple(x for x in chosen if x != f)
        if check(trial):  # type: ignore[operator]
            chosen = list(trial)
    return [tuple(chosen)]
