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
            msg = "start_date/end_date filter on the timestamp term: add it to filename_metadata"
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
    spec = LayoutSpec(
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
    spec.validate()
    return spec


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
    exclude: Sequence[str] = (),
) -> Table:
    """The LemnaTec ``SnapshotInfo.csv`` table: ``snapshot<id>/<tile>`` per listed tile.

    PlantCV appends ``.png`` (or ``imgformat``); without ``imgformat`` the tile matches a file
    of any extension, so exports saved as JPEG join too. Columns get PlantCV's names:
    ``snapshot`` (the id), ``barcode``, ``cartag``, ``timestamp``, ``camera_label`` (the tile);
    ``exclude`` leaves some out (those the file name already gives).
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
    )


def phenodata_table(
    path: str | os.PathLike[str], *, on_missing: Literal["error", "warn"] = "error"
) -> Table:
    """PlantCV's "phenodata" ``metadata.json``: its ``images`` object maps relative paths to
    metadata; read by :func:`read_table` into rows with the path in column ``file``."""
    return Table(os.fspath(path), file="{file}", on_missing=on_missing)


def read_table(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a CSV or JSON table into rows (one dict per row).

    JSON may be a list of objects, an object mapping file paths to objects (rows get the path
    in column ``file``), or PlantCV's phenodata document (its ``images`` object).
    """
    p = os.fspath(path)
    try:
        data = read_location(p)
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
    on_missing: Literal["error", "warn"] = "error",
) -> tuple[str, LayoutSpec]:
    """Read a PlantCV workflow configuration file; return ``(input_dir, layout)``.

    Uses ``input_dir`` (relative to the current folder, as PlantCV does; ``input_dir=``
    overrides it), ``imgformat``, ``include_all_subdirs``, ``filename_metadata``, ``delimiter``,
    ``timestampformat``, ``metadata_filters``, ``start_date`` and ``end_date``. As PlantCV does,
    a ``metadata.json`` in the input folder supplies the metadata (phenodata), else a
    ``SnapshotInfo.csv`` lists the files (LemnaTec), else file names are parsed.
    ``metadata_regex`` is not supported and refused when not empty.
    """
    p = os.fspath(path)
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
    terms = doc.get("filename_metadata") or []
    fmt = str(doc.get("timestampformat") or PLANTCV_TIMESTAMP)
    imgformat = doc.get("imgformat") or "all"
    options: dict[str, Any] = {
        "timestampformat": fmt,
        "metadata_filters": doc.get("metadata_filters") or None,
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
    else:
        tables: tuple[Table, ...] = ()
        if os.path.exists(snapshots):
            # PlantCV reads phenofront tiles as png unless imgformat names one format
            fixed = None if imgformat == "all" or not isinstance(imgformat, str) else imgformat
            table = lemnatec_table(snapshots, imgformat=fixed, on_missing=on_missing, exclude=terms)
            tables = (table,)
        if not terms:
            msg = f"PlantCV configuration {p!r}: filename_metadata is empty; list the terms"
            raise LayoutError(msg)
        spec = plantcv(
            terms,
            delimiter=str(doc.get("delimiter") or "_"),
            dims=dims,
            types=all_types if "timestamp" in terms or tables else types,
            imgformat=imgformat,
            tables=tables,
            **options,
        )
    preset = {**(spec.preset or {}), "config": os.path.abspath(p)}
    return os.path.abspath(top), _replace(spec, preset=preset)


def _phenodata_spec(
    table_path: str,
    terms: Sequence[str],
    dims: Sequence[str] | None,
    types: Mapping[str, str],
    options: Mapping[str, Any],
    on_missing: Literal["error", "warn"],
) -> LayoutSpec:
    # PlantCV takes the configured terms (plus timestamp) from metadata.json, no name parsing
    wanted = list(dict.fromkeys([*terms, "timestamp"]))
    table = Table(table_path, file="{file}", columns={t: t for t in wanted}, on_missing=on_missing)
    filters = {
        k: tuple(map(str, v if isinstance(v, list | tuple) else [v]))
        for k, v in (options.get("metadata_filters") or {}).items()
    }
    start, end = options.get("start_date"), options.get("end_date")
    return LayoutSpec(
        types=dict(types),
        dims=tuple(dims) if dims is not None else tuple(t for t in terms if t != "timestamp"),
        group_by=tuple(options.get("group_by") or ()),
        on_unmatched=options.get("on_unmatched", "error"),
        recursive=options.get("include_all_subdirs", True),
        tables=(table,),
        filters=filters,
        ranges={"timestamp": (start, end)} if start is not None or end is not None else {},
        derived=dict(options.get("derived") or {}),
        lookups=tuple(options.get("lookups") or ()),
        preset={"name": "plantcv", "filename_metadata": list(terms), "phenodata": table_path},
    )


def _replace(spec: LayoutSpec, **changes: Any) -> LayoutSpec:
    return dataclasses.replace(spec, **changes)
