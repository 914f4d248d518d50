"""Named layouts: PlantCV filename metadata, PlantCV workflow configs, LemnaTec sidecar tables.

Every preset returns an ordinary :class:`~imagezarr.layout.LayoutSpec` (a regex with named
groups plus types), so a manifest stays repeatable without the preset; the options it was built
from are recorded in ``LayoutSpec.preset``.

The semantics mirror PlantCV's own (``plantcv/parallel/parsers.py`` and
``plantcv/parallel/workflowconfig.py``, danforthcenter/plantcv):

- the file name *without its extension* is split on ``delimiter`` when it is one character,
  else searched (:func:`re.search`) with ``delimiter`` as a regex whose groups are the terms;
- the number of parts must equal the number of ``filename_metadata`` terms;
- every term is a string except ``timestamp``, parsed with ``timestampformat``
  (default ``%Y-%m-%dT%H:%M:%S.%fZ``); ``frame`` stays a string, as in PlantCV;
- ``metadata_filters`` keep files whose term text is one of the listed values;
  ``start_date``/``end_date`` keep timestamps inside the inclusive range;
- a ``SnapshotInfo.csv`` in the input folder (LemnaTec "phenofront") lists the files:
  one row per snapshot, ``snapshot<id>/<tile>`` for each ``;``-separated tile; a
  ``metadata.json`` (PlantCV "phenodata") maps relative paths to their metadata.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .errors import LayoutError
from .layout import Derivation, LayoutSpec, Lookup, Table
from .roots import READ_ERRORS, error_text, read_location

__all__ = [
    "PLANTCV_TERMS",
    "lemnatec_table",
    "phenodata_table",
    "plantcv",
    "plantcv_config",
    "read_table",
]

# PlantCV's metadata vocabulary (WorkflowConfig.metadata_term_definition): every term is a
# string except timestamp, a datetime; terms outside this list are strings too.
PLANTCV_TERMS: dict[str, str] = {
    "camera": "str",
    "imgtype": "str",
    "zoom": "str",
    "exposure": "str",
    "gain": "str",
    "frame": "str",
    "rotation": "str",
    "lifter": "str",
    "timestamp": "datetime",
    "id": "str",
    "barcode": "str",
    "treatment": "str",
    "cartag": "str",
    "measurementlabel": "str",
    "other": "str",
}
PLANTCV_TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
# PlantCV's imgformat "all" (parsers._replace_string_extension)
PLANTCV_ALL = ("bmp", "dib", "jpeg", "jpg", "jpe", "jp2", "png", "ppm", "pgm", "sr", "ras", "tiff")
PLANTCV_ALL += ("tif",)


def plantcv(
    filename_metadata: str | Sequence[str],
    *,
    delimiter: str = "_",
    timestampformat: str = PLANTCV_TIMESTAMP,
    dims: Sequence[str] | None = None,
    group_by: Sequence[str] = (),
    types: Mapping[str, str] | None = None,
    metadata_filters: Mapping[str, Any] | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    imgformat: str | Sequence[str] = "all",
    include_all_subdirs: bool = True,
    derived: Mapping[str, Derivation] | None = None,
    lookups: Sequence[Lookup] = (),
    tables: Sequence[Table] = (),
    on_unmatched: Literal["error", "skip"] = "error",
) -> LayoutSpec:
    """A layout parsing file names as PlantCV does (``filename_metadata`` + ``delimiter``).

    ``dims`` defaults to every term except ``timestamp``, which then becomes a coordinate
    over the dims that determine it. ``types`` overrides PlantCV's term types (e.g.
    ``{"frame": "int"}``). The other options are PlantCV's configuration keys.

    >>> spec = plantcv("plantbarcode,other,timestamp,camera,frame", delimiter="-",
    ...                timestampformat="%Y%m%dT%H%M%S")
    >>> spec.pattern
    '(?P<plantbarcode>[^-]*)-(?P<other>[^-]*)-(?P<timestamp>[^-]*)-(?P<camera>[^-]*)-(?P<frame>[^-]*)'
    >>> spec.dims, spec.types
    (('plantbarcode', 'other', 'camera', 'frame'), {'timestamp': '%Y%m%dT%H%M%S'})
    """
    terms = _terms(filename_metadata)
    pattern = _pattern(terms, delimiter)
    all_types = {t: timestampformat for t in terms if PLANTCV_TERMS.get(t) == "datetime"}
    all_types.update(types or {})
    filters = {
        k: tuple(map(str, v if isinstance(v, list | tuple) else [v]))
        for k, v in (metadata_filters or {}).items()
    }
    ranges = {}
    if start_date is not None or end_date is not None:
        if "timestamp" not in terms and not tables:
            msg = (
                "start_date/end_date filter on the timestamp term, which filename_metadata does "
                "not list: PlantCV selects no file (every timestamp is empty); add it"
            )
            raise LayoutError(msg)
        all_types.setdefault("timestamp", timestampformat)
        ranges["timestamp"] = (start_date, end_date)
    formats = [imgformat] if isinstance(imgformat, str) else list(imgformat)
    if formats == ["all"]:
        formats = list(PLANTCV_ALL)
    options = {
        "name": "plantcv",
        "filename_metadata": terms,
        "delimiter": delimiter,
        "timestampformat": timestampformat,
        "imgformat": imgformat if isinstance(imgformat, str) else list(imgformat),
        "include_all_subdirs": include_all_subdirs,
    }
    if metadata_filters:
        options["metadata_filters"] = {k: list(v) for k, v in filters.items()}
    if start_date is not None or end_date is not None:
        options.update(start_date=start_date, end_date=end_date)
    default_dims = tuple(t for t in terms if t != "timestamp" and t not in group_by)
    return LayoutSpec(
        pattern=pattern,
        types=all_types,
        dims=tuple(dims) if dims is not None else default_dims,
        group_by=tuple(group_by),
        on_unmatched=on_unmatched,
        target="stem",
        search=len(delimiter) != 1,
        recursive=include_all_subdirs,
        tables=tuple(tables),
        filters=filters,
        ranges=ranges,
        derived=dict(derived or {}),
        lookups=tuple(lookups),
        preset=options,
        extensions=tuple(f".{f.lower().lstrip('.')}" for f in formats),
    )


def _terms(filename_metadata: str | Sequence[str]) -> list[str]:
    if isinstance(filename_metadata, str):
        filename_metadata = filename_metadata.split(",")
    terms = [t.strip() for t in filename_metadata if t.strip()]
    if not terms:
        msg = "filename_metadata lists no terms, e.g. ['plantbarcode', 'timestamp', 'camera']"
        raise LayoutError(msg)
    bad = [t for t in terms if not t.isidentifier()]
    if bad:
        msg = f"filename_metadata terms {bad} are not names (letters, digits and _ only)"
        raise LayoutError(msg)
    return terms


def _pattern(terms: Sequence[str], delimiter: str) -> str:
    if not delimiter:
        msg = "delimiter is empty: give one character such as '_' or a regex with groups"
        raise LayoutError(msg)
    if len(delimiter) == 1:
        d = delimiter
        in_class = "\\" + d if d in "\\]^[" else d
        part = f"[^{in_class}]*"
        sep = d if d in "-_ ,;:@#=~" else re.escape(d)
        return sep.join(f"(?P<{t}>{part})" for t in terms)
    return _name_groups(delimiter, terms)


def _name_groups(regex: str, terms: Sequence[str]) -> str:
    """Give the capturing groups of ``regex`` the names ``terms``, in order.

    >>> _name_groups(r"(.{3})_(?:x)?(.+)_([\\d-]+)", ["imgtype", "barcode", "timestamp"])
    '(?P<imgtype>.{3})_(?:x)?(?P<barcode>.+)_(?P<timestamp>[\\\\d-]+)'
    """
    out: list[str] = []
    k = 0
    i = 0
    in_class = False
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            # a "]" right after "[" or "[^" is a literal
            j = i + 1 + (regex[i + 1 : i + 2] == "^")
            if regex[j : j + 1] == "]":
                out.append(regex[i : j + 1])
                i = j + 1
                continue
        elif ch == "(":
            named = re.match(r"\(\?P<\w+>", regex[i:])
            if named or not regex.startswith("(?", i):
                if k >= len(terms):
                    k += 1
                    i += len(named.group()) if named else 1
                    continue
                out.append(f"(?P<{terms[k]}>")
                k += 1
                i += len(named.group()) if named else 1
                continue
        out.append(ch)
        i += 1
    try:
        groups = re.compile(regex).groups
    except re.error as e:
        msg = f"delimiter regex {regex!r} is invalid: {e}"
        raise LayoutError(msg) from e
    if groups != len(terms) or k != len(terms):
        msg = (
            f"delimiter regex {regex!r} has {groups} group(s) but filename_metadata lists "
            f"{len(terms)} terms {list(terms)}: one capturing group per term"
        )
        raise LayoutError(msg)
    return "".join(out)


def lemnatec_table(
    path: str | os.PathLike[str],
    *,
    imgformat: str | None = None,
    on_missing: Literal["error", "warn"] = "error",
    on_unlisted: Literal["error", "skip"] = "error",
    exclude: Sequence[str] = (),
) -> Table:
    """The LemnaTec ``SnapshotInfo.csv`` table: ``snapshot<id>/<tile>`` per listed tile.

    PlantCV appends ``.png`` (or ``imgformat``); without ``imgformat`` the tile matches a file
    of any extension, so exports saved as JPEG join too. Columns get PlantCV's names:
    ``snapshot`` (the id), ``barcode``, ``cartag``, ``timestamp``, ``camera_label`` (the tile);
    ``exclude`` leaves some out (those the file name already gives). ``on_unlisted="skip"``
    leaves out the files the table does not list, as PlantCV does.
    """
    template = "snapshot{id}/{tiles}" + (f".{imgformat}" if imgformat else "")
    # PlantCV's names for the columns (parsers._read_phenofront); filename terms stay as parsed
    columns = {"id": "snapshot", "plantbarcode": "barcode", "cartag": "cartag"}
    columns.update({"timestamp": "timestamp", "tiles": "camera_label"})
    return Table(
        os.fspath(path),
        file=template,
        split={"tiles": ";"},
        columns={k: v for k, v in columns.items() if v not in exclude},
        ignore_extension=imgformat is None,
        on_missing=on_missing,
        on_unlisted=on_unlisted,
    )


def phenodata_table(
    path: str | os.PathLike[str], *, on_missing: Literal["error", "warn"] = "error"
) -> Table:
    """PlantCV's "phenodata" ``metadata.json``: its ``images`` object maps relative paths to
    metadata; read by :func:`read_table` into rows with the path in column ``file``."""
    return Table(os.fspath(path), file="{file}", on_missing=on_missing)


def read_table(
    path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Read a CSV or JSON table (a local path or a URL) into rows (one dict per row).

    JSON may be a list of objects, an object mapping file paths to objects (rows get the path
    in column ``file``), or PlantCV's phenodata document (its ``images`` object).
    ``storage_options`` reach a remote table (``s3://...``), as for the scan's source.
    """
    p = os.fspath(path)
    try:
        data = read_location(p, storage_options)
    except READ_ERRORS as e:
        msg = f"cannot read table {p!r}: {error_text(e)}"
        raise LayoutError(msg) from e
    text = data.decode("utf-8-sig")
    if p.lower().endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError as e:
            msg = f"table {p!r} is not JSON: {e}"
            raise LayoutError(msg) from e
        if isinstance(doc, dict) and isinstance(doc.get("images"), dict):
            doc = doc["images"]
        if isinstance(doc, dict):
            return [{"file": k, **v} for k, v in doc.items() if isinstance(v, dict)]
        if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
            return doc
        msg = f"table {p!r}: expected a list of objects or an object of objects"
        raise LayoutError(msg)
    return list(csv.DictReader(io.StringIO(text)))


def plantcv_config(
    path: str | os.PathLike[str],
    *,
    input_dir: str | os.PathLike[str] | None = None,
    dims: Sequence[str] | None = None,
    group_by: Sequence[str] = (),
    types: Mapping[str, str] | None = None,
    derived: Mapping[str, Derivation] | None = None,
    lookups: Sequence[Lookup] = (),
    on_unmatched: Literal["error", "skip"] = "error",
    on_missing: Literal["error", "warn"] = "warn",
) -> tuple[str, LayoutSpec]:
    """Read a PlantCV workflow configuration file; return ``(input_dir, layout)``.

    The layout selects the files PlantCV's ``metadata_parser`` selects for the same
    configuration. Uses ``input_dir`` (relative to the current folder, as PlantCV does;
    ``input_dir=`` overrides it), ``imgformat``, ``include_all_subdirs``, ``filename_metadata``,
    ``delimiter``, ``timestampformat``, ``metadata_filters``, ``start_date`` and ``end_date``.
    As PlantCV does, a ``metadata.json`` in the input folder lists the files and their metadata
    (phenodata), else a ``SnapshotInfo.csv`` lists them (LemnaTec: ``snapshot<id>/<tile>.png``,
    or ``.<imgformat>``), else file names are parsed; a listing ignores ``include_all_subdirs``
    and leaves out the files it does not name. Names PlantCV could not parse are left out when a
    filter or date range needs a term they lack (PlantCV filters them out); otherwise they are
    an error unless ``on_unmatched="skip"``. Entries naming files that are not there warn
    (``on_missing="warn"``) and are reported, with every file left out, through
    ``imagezarr.scan(..., report=[])`` (see :class:`imagezarr.layout.Exclusion`).
    ``metadata_regex`` is refused when not empty. A configuration PlantCV selects no file
    with, for a reason imagezarr can tell before listing the folder, raises saying why.
    """
    p = os.fspath(path)
    doc = _read_config(p)
    top = os.fspath(input_dir) if input_dir is not None else str(doc.get("input_dir") or "")
    if not top:
        msg = f"PlantCV configuration {p!r} has no input_dir: set it or pass the folder"
        raise LayoutError(msg)
    if doc.get("metadata_regex"):
        msg = (
            f"PlantCV configuration {p!r}: metadata_regex is not supported by imagezarr; "
            "use metadata_filters, a --glob, or a --pattern instead"
        )
        raise LayoutError(msg)
    terms = list(doc.get("filename_metadata") or [])
    fmt = str(doc.get("timestampformat") or PLANTCV_TIMESTAMP)
    imgformat = doc.get("imgformat") or "all"
    filters = doc.get("metadata_filters") or {}
    options: dict[str, Any] = {
        "timestampformat": fmt,
        "metadata_filters": filters or None,
        "start_date": doc.get("start_date"),
        "end_date": doc.get("end_date"),
        "include_all_subdirs": bool(doc.get("include_all_subdirs", True)),
        "group_by": group_by,
        "derived": derived,
        "lookups": lookups,
        "on_unmatched": on_unmatched,
    }
    phenodata = os.path.join(top, "metadata.json")
    snapshots = os.path.join(top, "SnapshotInfo.csv")
    all_types = {"timestamp": fmt, **(types or {})}
    if os.path.exists(phenodata):
        spec = _phenodata_spec(phenodata, terms, dims, all_types, options, on_missing)
    elif not terms:
        spec = _no_terms_spec(p, imgformat, options, os.path.exists(snapshots))
    else:
        tables: tuple[Table, ...] = ()
        table_terms: tuple[str, ...] = ()
        if os.path.exists(snapshots):
            if not isinstance(imgformat, str):
                msg = f"PlantCV configuration {p!r}: imgformat must be one format for {snapshots!r}"
                raise LayoutError(msg)
            # PlantCV names the tiles <tile>.png unless imgformat names one format
            ext = "png" if imgformat == "all" else imgformat
            table = lemnatec_table(
                snapshots, imgformat=ext, on_missing=on_missing, on_unlisted="skip", exclude=terms
            )
            tables = (table,)
            table_terms = LEMNATEC_FIELDS
        _check_blank_term(p, terms, filters, table_terms)
        spec = plantcv(
            terms,
            delimiter=str(doc.get("delimiter") or "_"),
            dims=dims,
            types=all_types if "timestamp" in terms or tables else types,
            imgformat=imgformat,
            tables=tables,
            **options,
        )
        if tables:  # the table lists the files: every folder, any image extension
            spec = _replace(spec, recursive=True, extensions=None)
    preset = {**(spec.preset or {}), "config": os.path.abspath(p)}
    return os.path.abspath(top), _replace(spec, preset=preset)


def _read_config(p: str) -> dict[str, Any]:
    try:
        doc = json.loads(read_location(p))
    except (OSError, RuntimeError) as e:
        msg = f"cannot read PlantCV configuration {p!r}: {error_text(e)}"
        raise LayoutError(msg) from e
    except ValueError as e:
        msg = f"PlantCV configuration {p!r} is not JSON: {e}"
        raise LayoutError(msg) from e
    if not isinstance(doc, dict):
        msg = f"PlantCV configuration {p!r} is not a JSON object"
        raise LayoutError(msg)
    return doc


# the fields of a SnapshotInfo.csv row that replace filename terms (parsers._read_phenofront)
LEMNATEC_FIELDS = ("snapshot", "barcode", "cartag", "timestamp", "camera_label")


def blank_term(terms: Sequence[str], given: Sequence[str] = ()) -> str | None:
    """The filename term PlantCV 4.x leaves empty: the last of its term order, unless
    ``timestamp`` is a term (or a table gives the term, ``given``).

    ``parsers._parse_filename`` counts its position in ``WorkflowConfig.metadata_terms``
    (``timestamp``, then terms outside PlantCV's vocabulary, then those in it), which holds
    one term more than the name has parts, so the last term stays ``None``: a metadata filter
    on it removes every file.

    >>> blank_term(["imgtype", "camera", "rotation", "zoom", "lifter", "gain", "exposure", "id"])
    'id'
    >>> blank_term(["plantbarcode", "camera", "frame"]), blank_term(["camera", "timestamp"])
    ('frame', None)
    """
    if "timestamp" in terms or not terms:
        return None
    order = [t for t in terms if t not in PLANTCV_TERMS] + [t for t in terms if t in PLANTCV_TERMS]
    last = list(dict.fromkeys(order))[-1]
    return None if last in given else last


def _check_blank_term(
    p: str, terms: Sequence[str], filters: Mapping[str, Any], given: Sequence[str]
) -> None:
    blank = blank_term(terms, given)
    if blank is not None and blank in filters:
        msg = (
            f"PlantCV configuration {p!r}: PlantCV selects no file with it: its parser "
            f"(plantcv.parallel.parsers._parse_filename) leaves the last filename_metadata term "
            f"{blank!r} empty unless 'timestamp' is a term, so metadata_filters on {blank!r} "
            "remove every file; filter on another term"
        )
        raise LayoutError(msg)


def _no_terms_spec(
    p: str, imgformat: str | Sequence[str], options: Mapping[str, Any], snapshots: bool
) -> LayoutSpec:
    """No filename_metadata: PlantCV parses no term it could be asked to filter on; every file
    of the format is taken, on one dim ``file``."""
    if (
        snapshots
        or options.get("metadata_filters")
        or options.get("start_date")
        or (options.get("end_date"))
    ):
        msg = (
            f"PlantCV configuration {p!r}: filename_metadata is empty; list the terms "
            "(needed for a SnapshotInfo.csv, metadata_filters, start_date and end_date)"
        )
        raise LayoutError(msg)
    formats = [imgformat] if isinstance(imgformat, str) else list(imgformat)
    formats = list(PLANTCV_ALL) if formats == ["all"] else formats
    return LayoutSpec(
        on_unmatched=options.get("on_unmatched", "error"),
        recursive=options.get("include_all_subdirs", True),
        derived=dict(options.get("derived") or {}),
        lookups=tuple(options.get("lookups") or ()),
        preset={"name": "plantcv", "filename_metadata": [], "imgformat": imgformat},
        extensions=tuple(f".{f.lower().lstrip('.')}" for f in formats),
    )


def _phenodata_spec(
    table_path: str,
    terms: Sequence[str],
    dims: Sequence[str] | None,
    types: Mapping[str, str],
    options: Mapping[str, Any],
    on_missing: Literal["error", "warn"],
) -> LayoutSpec:
    # PlantCV takes the configured terms (plus timestamp) from metadata.json, no name parsing;
    # a term the file does not give is empty for every image
    given = {k for row in read_table(table_path) for k in row}
    wanted = [t for t in dict.fromkeys([*terms, "timestamp"]) if t in given]
    table = Table(
        table_path,
        file="{file}",
        columns={t: t for t in wanted},
        on_missing=on_missing,
        on_unlisted="skip",
    )
    filters = {
        k: tuple(map(str, v if isinstance(v, list | tuple) else [v]))
        for k, v in (options.get("metadata_filters") or {}).items()
    }
    start, end = options.get("start_date"), options.get("end_date")
    needed = [*filters, *(["timestamp"] if start or end else [])]
    lacking = [k for k in needed if k not in wanted]
    if lacking:
        what = "start_date/end_date" if lacking[0] == "timestamp" else "metadata_filters"
        msg = (
            f"PlantCV selects no file: the images of {table_path!r} have no {lacking[0]!r} (or "
            f"filename_metadata does not list it), and {what} on it remove every image"
        )
        raise LayoutError(msg)
    return LayoutSpec(
        types={k: v for k, v in types.items() if k in wanted or k not in [*terms, "timestamp"]},
        dims=tuple(dims) if dims is not None else tuple(t for t in wanted if t != "timestamp"),
        group_by=tuple(options.get("group_by") or ()),
        on_unmatched=options.get("on_unmatched", "error"),
        tables=(table,),
        filters=filters,
        ranges={"timestamp": (start, end)} if start is not None or end is not None else {},
        derived=dict(options.get("derived") or {}),
        lookups=tuple(options.get("lookups") or ()),
        preset={"name": "plantcv", "filename_metadata": list(terms), "phenodata": table_path},
    )


def _replace(spec: LayoutSpec, **changes: Any) -> LayoutSpec:
    return dataclasses.replace(spec, **changes)
