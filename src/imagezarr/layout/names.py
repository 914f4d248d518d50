"""Layout: a pattern proposed from the file names themselves, for a scan given none.

Each path is cut into folder levels and the file name; each part into tokens at separators
(``-``, ``_``, ``.``, spaces, ...), dates and timestamps kept whole (ISO, ``%Y%m%d``,
``%Y%m%dT%H%M%S``, ``%Y-%m-%d %H_%M_%S``, ...), and each token into letter and digit runs.
Names of one *shape* (the same tokens, separators and runs) give one regex: constant tokens
stay literal, varying ones become named groups typed ``int``, a datetime format or text, and
are named by what they look like (``timestamp``, ``date``, ``well``, ``site`` for ``s2``,
``folder`` for a folder level, else ``f1``, ``f2``, ...). When a timestamp is what tells files
apart and the times fall into runs (one per night or day, the gaps far longer than a run), a
``night`` (or ``day``) field is derived from it with ``day(timestamp, HH:MM)``.

Hand-written: no library infers a regex from a set of names; the rules are few and each is
stated where it is applied. Pure: paths in, a :class:`Proposal` out.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta

from .match import day
from .spec import RESERVED

__all__ = ["Proposal", "propose"]

SAMPLE = 4000  # names read to propose a pattern; the pattern is then checked against all
MAJORITY = 0.8  # one shape must hold this share of the files, the rest are left out
QUIET_HOURS = 6  # a daily gap this long (no image taken) separates runs: nights or days

# a date, optionally a time: year-month-day with one separator (or none) repeated, then
# T/space/_/- and hour-minute-second with one separator (or none), then a fraction
_DATETIME = re.compile(
    r"(?<![0-9])((?:19|20)[0-9]{2})([-_.]?)([0-9]{2})\2([0-9]{2})"
    r"(?:([T _-])([0-9]{2})([:_.-]?)([0-9]{2})\7([0-9]{2})(?:([.,]?)([0-9]{3}|[0-9]{6}))?)?"
    r"(?![0-9])"
)
_SEPARATORS = re.compile(r"[\W_]+")
_RUNS = re.compile(r"[^\W\d_]+|[0-9]+|[^\W_]+")  # letters, ASCII digits, other (e.g. "²")
_EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,5})$")

# prefixes of a counter inside a token ("s2", "w1", "z03"), as microscopes and plate readers
# write them; any other prefix of two or more letters names its field itself ("night2")
_PREFIXES = {
    "s": "site",
    "w": "wavelength",
    "z": "z",
    "t": "t",
    "c": "channel",
    "ch": "channel",
    "f": "field",
    "fld": "field",
    "p": "position",
    "pos": "position",
    "r": "row",
    "col": "column",
    "psii": "param",  # PlantCV's PSII protocol steps (PSII0 ... PSII3)
    "e": "exposure",  # LemnaTec: VIS_SV_0_z1_h1_g0_e82_117770.png
    "g": "gain",
}
# words whose values say what the field is: LemnaTec's cameras and views
_VALUES = {
    "camera": {"vis", "nir", "fluo", "ir", "rgb", "psii", "swir", "uv"},
    "view": {"sv", "tv"},
}
# what cameras put before a shot's counter (IMG_0001.JPG, DSC01234.JPG): not a field name
_CAMERAS = {"img", "dsc", "dscn", "dscf", "pxl", "gopr", "mvi", "pict", "imag", "photo"}
_WELL = re.compile(r"[A-Pa-p][0-9]{1,2}")


@dataclass(frozen=True)
class _Token:
    kind: str  # "sep", "time" (fmt in .fmt) or "word"
    text: str
    fmt: str = ""
    runs: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[str, ...]:
        if self.kind == "sep":
            return ("sep", self.text)
        if self.kind == "time":
            return ("time", self.fmt)
        return ("word", *(_run_kind(r) for r in self.runs))


@dataclass(frozen=True)
class ProposedField:
    """One field of a proposal: its name, type (``str``, ``int`` or a datetime format), the
    number of distinct values seen and a few of them."""

    name: str
    type: str
    values: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Proposal:
    """A pattern read off the names (``pattern`` None: no pattern fits; ``why`` says why)."""

    pattern: str | None
    types: dict[str, str] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)
    fields: tuple[ProposedField, ...] = ()
    left_out: int = 0  # files of other shapes, left out of the proposal
    examples_left_out: tuple[str, ...] = ()
    why: str = ""

    def options(self) -> str:
        """The proposal as CLI options to paste (``--pattern ... --type ...``)."""
        if self.pattern is None:
            return ""
        out = ["--pattern", shlex.quote(self.pattern)]
        for name, kind in self.types.items():
            out += ["--type", shlex.quote(f"{name}={kind}")]
        for name, how in self.derived.items():
            out += ["--derive", shlex.quote(f"{name}={how}")]
        if self.left_out:
            out += ["--on-unmatched", "skip"]
        return " ".join(out)

    def summary(self) -> str:
        """One or two lines for a person: what was inferred, or why nothing was."""
        if self.pattern is None:
            return (
                f"no pattern inferred from the names ({self.why}): one dim 'file' over the "
                "files; give --pattern to name fields"
            )
        lines = [f"fields inferred from the names: {self.options()}"]
        for name, how in self.derived.items():
            lines.append(
                f"  {name} is derived from the runs in the timestamps ({how}); to keep the "
                "timestamp as it is, pass the pattern above without --derive"
            )
        if self.left_out:
            lines.append(
                f"  {self.left_out} file(s) named otherwise are left out, e.g. "
                + ", ".join(repr(p) for p in self.examples_left_out)
            )
        return "\n".join(lines)


def propose(paths: Sequence[str], *, sample: int = SAMPLE) -> Proposal:
    """A pattern for ``paths`` (relative, ``/``-separated), read off the names.

    >>> p = propose([f"{n}/A{i}-{n}-PSII{s}.png" for n in ("2020-05-31", "2020-06-01")
    ...              for i in (1, 2) for s in (0, 1)])
    >>> [(f.name, f.type) for f in p.fields]
    [('date', '%Y-%m-%d'), ('well', 'str'), ('param', 'str')]
    >>> propose(["a.png"]).why
    'one file: nothing varies'
    """
    if len(paths) < 2:
        return Proposal(None, why="one file: nothing varies" if paths else "no files")
    chosen = list(_spread(paths, sample))
    proposal = Proposal(None, why="")
    for _ in range(3):  # a token constant in the sample may vary elsewhere: widen, retry
        proposal = _propose(chosen)
        if proposal.pattern is None:
            return proposal
        rx = re.compile(proposal.pattern)
        missed = [p for p in paths if not rx.fullmatch(p)]
        if len(missed) <= len(paths) * (1 - MAJORITY) and (
            not missed or proposal.left_out or len(chosen) == len(paths)
        ):
            return _with_left_out(proposal, missed)
        extra = set(chosen)
        chosen += [p for p in _spread(missed, max(1, sample // 4)) if p not in extra]
    return _with_left_out(proposal, [p for p in paths if not re.fullmatch(proposal.pattern, p)])


def _with_left_out(proposal: Proposal, missed: Sequence[str]) -> Proposal:
    return replace(proposal, left_out=len(missed), examples_left_out=tuple(missed[:3]))


def _spread(paths: Sequence[str], n: int) -> Sequence[str]:
    """At most ``n`` of ``paths``, evenly spread (so every folder has its say)."""
    if len(paths) <= n:
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def _run_kind(run: str) -> str:
    if run.isascii() and run.isdigit():
        return "D"
    return "L" if run.isalpha() else "O"


def _tokens(part: str) -> list[_Token]:
    """A folder or file name as separators, dates/timestamps and words."""
    out: list[_Token] = []
    at = 0
    for m in _DATETIME.finditer(part):
        fmt = _datetime_format(m)
        if fmt is None:
            continue
        out += _words(part[at : m.start()])
        out.append(_Token("time", m.group(0), fmt))
        at = m.end()
    return out + _words(part[at:])


def _datetime_format(m: re.Match[str]) -> str | None:
    """The strptime format of a date/time match, or None when it is no real date."""
    _, s1, _, _, tsep, hh, s2, _, _, fsep, frac = m.groups()
    fmt = f"%Y{s1}%m{s1}%d"
    if hh is not None:
        fmt += f"{tsep}%H{s2}%M{s2}%S" + (f"{fsep}%f" if frac else "")
    try:
        datetime.strptime(m.group(0), fmt)
    except ValueError:
        return None  # 20201399: digits, not a date
    return fmt


def _words(text: str) -> list[_Token]:
    out: list[_Token] = []
    at = 0
    for m in _SEPARATORS.finditer(text):
        if m.start() > at:
            word = text[at : m.start()]
            out.append(_Token("word", word, runs=tuple(_RUNS.findall(word))))
        out.append(_Token("sep", m.group(0)))
        at = m.end()
    if at < len(text):
        word = text[at:]
        out.append(_Token("word", word, runs=tuple(_RUNS.findall(word))))
    return out


def _split(path: str) -> tuple[list[list[_Token]], str]:
    *folders, name = path.split("/")
    m = _EXTENSION.search(name)
    ext = m.group(1) if m and m.start() > 0 else ""
    stem = name[: len(name) - len(ext)]
    return [_tokens(f) for f in folders] + [_tokens(stem)], ext


def _propose(paths: Sequence[str]) -> Proposal:
    split = [_split(p) for p in paths]
    kinds = [_shape(parts) for parts, _ in split]
    shapes = Counter(kinds)
    (shape, count), *others = shapes.most_common()
    if others and count < len(paths) * MAJORITY:
        examples = [p for p, k in zip(paths, kinds, strict=True) if k != shape]
        return Proposal(
            None,
            why=(
                f"the names have {len(shapes)} different shapes (e.g. {paths[0]!r} and "
                f"{examples[0]!r}), none shared by {MAJORITY:.0%} of the files"
            ),
        )
    keep = [i for i, k in enumerate(kinds) if k == shape]
    rows = [split[i][0] for i in keep]
    exts = sorted({split[i][1] for i in keep})
    return _build(rows, exts, left_out=len(paths) - len(keep))


def _shape(parts: list[list[_Token]]) -> tuple[tuple[tuple[str, ...], ...], ...]:
    return tuple(tuple(t.shape for t in part) for part in parts)


@dataclass
class _Slot:
    """A varying token: where it is, what it holds, and what its neighbours say."""

    part: int  # folder level, or the file name (the last)
    index: int  # token index in its part
    values: list[str]
    kind: str
    fmt: str
    regex: str
    prefix: str = ""  # constant letters before the varying digits ("s" of s2)
    word_before: str = ""  # a constant word just before ("tile" of tile_3)
    name: str = ""
    type: str = "str"
    same_as: _Slot | None = None  # the date of the folder repeated in the name: one field


def _build(rows: list[list[list[_Token]]], exts: list[str], *, left_out: int) -> Proposal:
    nparts = len(rows[0])
    pieces: list[list[str | _Slot]] = []
    slots: list[_Slot] = []
    for p in range(nparts):
        piece: list[str | _Slot] = []
        first = rows[0][p]
        for t in range(len(first)):
            values = [r[p][t].text for r in rows]
            tok = first[t]
            if tok.kind == "sep" or len(set(values)) == 1:
                piece.append(_literal(tok.text))
                continue
            slot = _slot(p, t, tok, [r[p][t] for r in rows], values)
            if t >= 2 and first[t - 1].kind == "sep" and first[t - 2].kind == "word":
                before = {r[p][t - 2].text for r in rows}
                if len(before) == 1:
                    slot.word_before = before.pop()
            slot.same_as = next((s for s in slots if s.values == values), None)
            piece.append(slot)
            if slot.same_as is None:
                slots.append(slot)
        pieces.append(piece)
    if not slots:
        return Proposal(None, why="every name has the same parts: nothing varies but the order")
    _name(slots, nparts, rows)
    derived = _runs(slots)
    regex = "/".join("".join(_group(x) for x in piece) for piece in pieces)
    if len(exts) == 1:
        regex += _literal(exts[0])
    else:  # .png and .PNG, or .tif and .tiff: one shape, any of the extensions
        names = sorted({e[1:].lower() for e in exts if e})
        alt = r"\.(?i:" + "|".join(re.escape(e) for e in names) + ")"
        regex += f"(?:{alt})?" if "" in exts else alt
    types = {s.name: s.type for s in slots if s.type != "str"}
    fields = tuple(
        ProposedField(s.name, s.type, len(set(s.values)), tuple(sorted(set(s.values))[:4]))
        for s in slots
    )
    return Proposal(regex, types, derived, fields, left_out=left_out)


def _slot(p: int, t: int, tok: _Token, toks: list[_Token], values: list[str]) -> _Slot:
    if tok.kind == "time":
        return _Slot(p, t, values, "time", tok.fmt, _time_regex(tok.fmt), type=tok.fmt)
    regex = ""
    constant: list[str | None] = []  # each run's text where every name has the same one
    kinds = [_run_kind(r) for r in tok.runs]
    for k, kind in enumerate(kinds):
        runs = {x.runs[k] for x in toks}
        constant.append(runs.pop() if len(runs) == 1 else None)
        if constant[-1] is not None:
            regex += _literal(constant[-1])
        else:
            regex += {"D": "[0-9]+", "L": r"[^\W\d_]+"}.get(kind, r"[^\W_]+")
    ftype = "str"
    if kinds == ["D"] and len({int(v) for v in values}) == len(set(values)):
        ftype = "int"  # "007" and "7" would become one label: such a field stays text
    prefix = (constant[0] or "") if kinds == ["L", "D"] else ""  # "s" of s2
    return _Slot(p, t, values, "word", "", regex, prefix=prefix, type=ftype)


def _time_regex(fmt: str) -> str:
    out: list[str | int] = []  # literal text, or a count of digits
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            width = {"Y": 4, "f": 0}.get(fmt[i + 1], 2)
            if width and out and isinstance(out[-1], int) and out[-1]:
                out[-1] += width  # %Y%m%d: one run of 8 digits
            else:
                out.append(width)
            i += 2
        else:
            out.append(_literal(fmt[i]))
            i += 1
    return "".join(x if isinstance(x, str) else f"[0-9]{{{x}}}" if x else "[0-9]+" for x in out)


def _literal(text: str) -> str:
    """``text`` as a regex, escaping only what is special (re.escape also escapes ``-`` and
    spaces, which makes a pattern harder to read and paste)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _group(x: str | _Slot) -> str:
    if isinstance(x, str):
        return x
    if x.same_as is not None:
        return f"(?P={x.same_as.name})"
    return f"(?P<{x.name}>{x.regex})"


def _name(slots: list[_Slot], nparts: int, rows: list[list[list[_Token]]]) -> None:
    """Name each varying token by what it looks like; the rest f1, f2, ..."""
    _psii_names(slots, nparts, rows)
    prefixes = {s.prefix.lower() for s in slots if s.prefix}
    grid = {"r", "c"} <= prefixes  # r0_c0: a mosaic's row and column, not a channel
    folders = [s for s in slots if s.part < nparts - 1 and not s.name]
    for s in slots:
        if s.name:
            continue
        low = s.prefix.lower()
        if s.kind == "time":
            s.name = "timestamp" if "%H" in s.fmt else "date"
        elif low and grid and low in ("r", "c"):
            s.name = {"r": "row", "c": "column"}[low]
        elif low in _PREFIXES:
            s.name = _PREFIXES[low]
        elif _wells(s.values):
            s.name = "well"
        elif (low_values := {v.lower() for v in s.values}) and (
            kind := next((k for k, vs in _VALUES.items() if low_values <= vs), "")
        ):
            s.name = kind
        elif len(low) >= 2:
            s.name = low
        elif s.word_before and s.type == "int" and s.word_before.isalpha():
            word = s.word_before.lower()
            s.name = "number" if word in _CAMERAS else word
        elif s in folders:
            s.name = "folder" if len(folders) == 1 else f"folder{folders.index(s) + 1}"
    unnamed = 0
    taken: set[str] = set()
    for s in slots:
        name = _identifier(s.name) if s.name else ""
        if not name:
            unnamed += 1
            name = f"f{unnamed}"
        base, k = name, 2
        while name in taken or name in RESERVED:
            name, k = f"{base}{k}", k + 1
        s.name = name
        taken.add(name)


def _wells(values: Sequence[str]) -> bool:
    """Plate wells (A1 ... P24): a row letter and a column number, upper case."""
    ok = all(_WELL.fullmatch(v) and v[0].isupper() and int(v[1:]) <= 24 for v in values)
    return ok and (len({v[0] for v in values}) > 1 or values[0][0] <= "H")


def _psii_names(slots: list[_Slot], nparts: int, rows: list[list[list[_Token]]]) -> None:
    """PlantCV's PSII file names, ``<barcode>-doi-<timestamp>-<step>-<frame>``: the
    founding convention of this project's first users, named as PlantCV names them."""
    stem = rows[0][nparts - 1]
    words = [t for t in stem if t.kind != "sep"]
    texts = [t.text.lower() for t in words]
    if len(words) != 5 or texts[1] != "doi" or words[2].kind != "time":
        return
    names = {0: "barcode", 2: "timestamp", 3: "param", 4: "frame"}
    index = [i for i, t in enumerate(stem) if t.kind != "sep"]
    for s in slots:
        if s.part == nparts - 1:
            which = index.index(s.index)
            s.name = names.get(which, "")
            if which == 4 and s.type == "str" and all(v.isdigit() for v in s.values):
                s.type = "int"


def _identifier(name: str) -> str:
    name = re.sub(r"\W", "_", name.lower()).strip("_")
    if not name or not name.isascii():
        return ""
    return f"f_{name}" if name[0].isdigit() else name


def _runs(slots: list[_Slot]) -> dict[str, str]:
    """A night/day field from the runs in the one timestamp, when the timestamp is what tells
    files apart; a date field that matches the runs one to one is renamed instead."""
    stamps = [s for s in slots if s.kind == "time" and "%H" in s.fmt]
    if len(stamps) != 1:
        return {}
    stamp = stamps[0]
    times = [datetime.strptime(v, stamp.fmt) for v in stamp.values]
    found = _daily_runs(times)
    if found is None:
        return {}
    boundary, word = found
    runs = [day(t, boundary) for t in times]
    dates = [s for s in slots if s.kind == "time" and "%H" not in s.fmt]
    for d in dates:
        if len(set(zip(d.values, runs, strict=True))) == len(set(d.values)) == len(set(runs)):
            if d.name == "date" and word not in {s.name for s in slots}:
                d.name = word
            return {}
    others = [s for s in slots if s is not stamp]
    keys = {tuple(s.values[i] for s in others) for i in range(len(times))}
    if len(keys) == len(times) or word in {s.name for s in slots}:
        return {}  # the other fields tell files apart: the timestamp is a coordinate anyway
    how = f"day({stamp.name}, {boundary:%H:%M})" if boundary != time(0) else f"day({stamp.name})"
    return {word: how}


def _daily_runs(times: Sequence[datetime]) -> tuple[time, str] | None:
    """The day boundary (a time in the daily quiet period) and "night" or "day", when the
    times fall into runs, one per day, separated by far more than a run lasts."""
    if len({t.date() for t in times}) < 2:
        return None
    secs = sorted({t.hour * 3600 + t.minute * 60 + t.second for t in times})
    gaps = [(b - a, a) for a, b in itertools.pairwise(secs)]
    gaps.append((secs[0] + 86400 - secs[-1], secs[-1]))
    gap, start = max(gaps)
    if gap < QUIET_HOURS * 3600:
        return None
    midnight_inside = start + gap >= 86400
    middle = (start + gap // 2) % 86400
    boundary = time(0) if midnight_inside else time(middle // 3600, middle % 3600 // 60)
    labels = [day(t, boundary) for t in times]
    spans: dict[datetime, list[datetime]] = {}
    for t, label in zip(times, labels, strict=True):
        spans.setdefault(label, []).append(t)
    ordered = sorted((min(v), max(v)) for v in spans.values())
    longest = max(b - a for a, b in ordered)
    between = min(
        (c - b for (_, b), (c, _) in itertools.pairwise(ordered)),
        default=timedelta(days=1),
    )
    if len(ordered) < 2 or between < 2 * longest:
        return None
    at_night = all(s >= 18 * 3600 or s < 6 * 3600 for s in secs)
    return boundary, "night" if at_night else "day"
