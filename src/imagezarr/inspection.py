"""Inspect: a dry run of a scan that writes nothing and explains everything.

Each field with its kind, number of values and examples; the layouts the files allow, with
their shape and holes; and every file left out, with the reason. PlantCV's
``inspect_dataset`` is the model: look before you scan.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Unpack

from .errors import ImageZarrError
from .executor import Executor
from .layout import Exclusion, LayoutWarning, arrange, natural_key
from .layout.arrange import _candidates, image_label, minority_images
from .layout.infer import rank_dims
from .layout.match import OTHER_SIGNATURE, UNREADABLE
from .scanning import LAYOUT_KEYWORDS, LayoutKeywords, gather, layout_spec, split_inferred

__all__ = ["FieldSummary", "Inspection", "LayoutCandidate", "inspect"]

EXAMPLES = 4


@dataclass(frozen=True, slots=True)
class FieldSummary:
    """One field: its kind, how many distinct values, and the first few in label order."""

    name: str
    kind: str
    values: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LayoutCandidate:
    """Dims the files allow: the grid's slots and holes (summed over groups)."""

    dims: tuple[str, ...]
    slots: int
    holes: int
    chosen: bool

    @property
    def hole_ratio(self) -> float:
        return self.holes / self.slots if self.slots else 0.0


@dataclass(frozen=True)
class Inspection:
    """What :func:`inspect` found. ``to_json()`` for scripts."""

    root: str
    listed: int
    matched: int
    readable: int
    fields: list[FieldSummary]
    candidates: list[LayoutCandidate]
    excluded: list[Exclusion]
    signatures: Mapping[str, int] = field(default_factory=dict)
    problem: str = ""  # why a scan with these options would fail, if it would
    inferred: str = ""  # the pattern read off the names (or why none fit), when inferred
    options: str = ""  # that pattern as --pattern/--type options to paste

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "listed": self.listed,
            "matched": self.matched,
            "readable": self.readable,
            "fields": [
                {"name": f.name, "kind": f.kind, "values": f.values, "examples": list(f.examples)}
                for f in self.fields
            ],
            "layouts": [
                {
                    "dims": list(c.dims),
                    "slots": c.slots,
                    "holes": c.holes,
                    "hole_ratio": round(c.hole_ratio, 4),
                    "chosen": c.chosen,
                }
                for c in self.candidates
            ],
            "signatures": dict(self.signatures),
            "excluded": [e.to_json() for e in self.excluded],
            "problem": self.problem,
            "inferred": self.inferred,
            "options": self.options,
        }


def _kind(values: Sequence[Any]) -> str:
    kinds = {
        "datetime" if isinstance(v, datetime) else type(v).__name__ for v in values if v is not None
    }
    return kinds.pop() if len(kinds) == 1 else ("mixed: " + ", ".join(sorted(kinds)) or "none")


def _label(v: Any) -> str:
    return v.isoformat(sep=" ") if isinstance(v, datetime) else str(v)


def _summaries(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[FieldSummary]:
    out = []
    for name in names:
        values = [row.get(name) for row in rows]
        distinct = list(dict.fromkeys(values))
        shown = sorted((_label(v) for v in distinct if v is not None), key=natural_key)
        out.append(FieldSummary(name, _kind(values), len(distinct), tuple(shown[:EXAMPLES])))
    return out


def inspect(
    source: str | os.PathLike[str],
    *,
    files: str | os.PathLike[str] | Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    allow_outside_root: bool = False,
    workers: int | None = None,
    infer: bool = False,
    **layout: Unpack[LayoutKeywords],
) -> Inspection:
    """Look at ``source`` as :func:`imagezarr.scan` would, without writing anything.

    Takes the same options as :func:`~imagezarr.scan`; files that do not match, are not
    images or would not fit are listed with their reason instead of stopping it. With
    ``infer`` and no pattern, the pattern read off the names is used and shown in
    ``Inspection.inferred`` (its pasteable options in ``Inspection.options``).

    >>> import tempfile
    >>> from imagezarr.testing import PSII_PATTERN, PSII_TYPES, make_psii_experiment
    >>> folder = tempfile.mkdtemp()
    >>> _ = make_psii_experiment(folder, plants=2, nights=2, steps=1, frames=2, shape=(4, 4),
    ...                          holes=0)
    >>> report = inspect(folder, pattern=PSII_PATTERN, types=PSII_TYPES)
    >>> [(f.name, f.values) for f in report.fields]
    [('night', 2), ('barcode', 2), ('timestamp', 4), ('param', 1), ('frame', 2)]
    >>> report.candidates[0].dims, report.candidates[0].holes
    (('night', 'barcode', 'frame'), 0)
    """
    unknown = sorted(set(layout) - set(LAYOUT_KEYWORDS))
    if unknown:
        msg = (
            f"unknown keyword {unknown[0]!r}; the layout keywords are {', '.join(LAYOUT_KEYWORDS)}"
        )
        raise TypeError(msg)
    given = dict(layout)
    base = given.pop("layout", None)
    deferred = split_inferred(infer, base, given)
    spec = layout_spec(
        base,
        on_unmatched="skip",  # an inspection lists such files instead of stopping
        **given,  # type: ignore[arg-type]
    )
    with warnings.catch_warnings():
        # the table rows without file are listed below with the other exclusions
        warnings.filterwarnings("ignore", r"table .* not among the scanned", LayoutWarning)
        got = gather(
            source,
            spec,
            files=files,
            storage_options=storage_options,
            allow_outside_root=allow_outside_root,
            executor=Executor(workers=workers),
            infer=deferred,
        )
    spec = got.spec
    excluded = list(got.report)
    excluded += [Exclusion(got.entries[i].path, UNREADABLE, str(e)) for i, e in got.failed]
    good = got.good
    rows = [got.fields[i] for i in good]
    infos = [got.infos[i] for i in good]
    signatures = Counter(image_label(info) for info in infos)  # type: ignore[arg-type]
    odd = minority_images(rows, infos, spec)  # type: ignore[arg-type]
    excluded += [Exclusion(got.entries[good[k]].path, OTHER_SIGNATURE, why) for k, why in odd]
    # the layouts the files allow once the odd ones are left out (on_mismatch="skip")
    drop = {k for k, _ in odd}
    named = rows  # the field summaries describe every readable name, odd ones included
    rows = [r for k, r in enumerate(rows) if k not in drop]
    names = _candidates(rows, spec) or []
    groups = _groups(rows, spec.group_by)
    ranked = rank_dims(rows, names, groups=groups) if names and rows else []
    chosen = tuple(spec.dims) if spec.dims is not None else (ranked[0].dims if ranked else ())
    candidates = [LayoutCandidate(c.dims, c.slots, c.holes, c.dims == chosen) for c in ranked]
    problem = ""
    try:
        if good:
            arrange(
                [got.entries[i].path for i in good],
                [got.fields[i] for i in good],
                infos,  # type: ignore[arg-type]
                spec,
            )
    except ImageZarrError as e:
        problem = str(e)
    return Inspection(
        root=got.root.url,
        listed=got.listed,
        matched=len(got.entries),
        readable=len(good),
        fields=_summaries(named, [*names, *spec.group_by]),
        candidates=candidates,
        excluded=excluded,
        signatures=dict(signatures.most_common()),
        problem=problem,
        inferred="" if got.inferred is None else got.inferred.summary(),
        options="" if got.inferred is None else got.inferred.options(),
    )


def _groups(rows: Sequence[Mapping[str, Any]], group_by: Sequence[str]) -> list[list[int]]:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(tuple(row.get(g) for g in group_by), []).append(i)
    return list(groups.values())
