"""Stage 3, layout spec: a manifest's layout section is read key by key.

A manifest may come from anywhere: every malformed layout section must give a ManifestError
naming the key, never a TypeError, KeyError or AttributeError from deep inside.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imagezarr
from imagezarr.errors import LayoutError, ManifestError
from imagezarr.layout import LayoutSpec, Lookup, Table, parse_type, table_paths
from imagezarr.manifest import from_json
from imagezarr.testing import PSII_SCAN as PSII
from imagezarr.testing import synthetic_manifest

# every key LayoutSpec writes, each with a value it accepts
RICH = LayoutSpec(
    pattern=r"(?P<plant>[A-Z]\d+)-(?P<t>\d{8}T\d{6})-(?P<frame>\d+)\.png",
    glob="**/*.png",
    types={"t": "%Y%m%dT%H%M%S", "frame": "int"},
    dims=("plant", "frame"),
    group_by=("when",),
    on_unmatched="skip",
    target="name",
    search=True,
    recursive=False,
    tables=(
        Table(
            "info.csv",
            file="{file}",
            split={"file": ";"},
            columns={"treatment": "treatment"},
            ignore_extension=True,
            on_missing="warn",
        ),
    ),
    filters={"plant": ("A1", "A2")},
    ranges={"t": ("20200101T000000", None), "frame": (None, "3")},
    derived={"when": "day(t, 20:00)", "month": "strftime(t, %Y-%m)"},
    lookups=(Lookup("frames.csv", key="frame", column="frame", columns={"label": "frame_label"}),),
    preset={"name": "custom", "options": [1, {"a": None}]},
    extensions=(".png",),
)
BASE = synthetic_manifest(plants=2, days=1, steps=1, frames=1).to_json()
PREFIX = "<manifest>: invalid manifest: layout: "


def load_with(layout: Any, tmp_path) -> Any:
    doc = copy.deepcopy(BASE)
    doc["layout"] = layout
    return from_json(doc, base=tmp_path)


def with_value(path: str, value: Any) -> dict[str, Any]:
    """RICH's JSON with the value at ``path`` (``tables.0.split``) replaced."""
    doc = json.loads(json.dumps(RICH.to_json()))
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return doc


def test_every_key_round_trips_through_a_manifest(tmp_path):
    assert LayoutSpec.from_json(json.loads(json.dumps(RICH.to_json()))) == RICH
    assert load_with(RICH.to_json(), tmp_path).layout == RICH
    assert table_paths(RICH) == ["info.csv", "frames.csv"]


def test_a_scanned_manifest_still_loads(psii, tmp_path):
    images, _ = psii
    out = imagezarr.scan(images, **PSII).save(tmp_path / "exp.imagezarr.json")
    doc = json.loads(out.read_text())
    assert from_json(doc, base=tmp_path).layout == LayoutSpec.from_json(doc["layout"])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("pattern", 5, "pattern must be a string, not a number"),
        ("pattern", ["(?P<a>x)"], "pattern must be a string, not a list"),
        ("pattern", "(?P<a", "invalid pattern"),
        ("pattern", "(?P<a>" + "(" * 5000 + ")" * 5000 + ")", "invalid pattern"),
        ("pattern", r"\w+\.png", "has no named groups"),
        ("glob", 1, "glob must be a string"),
        ("types", ["int"], "types must be an object, not a list"),
        ("types", {"frame": 1}, "types.frame must be a string, not a number"),
        ("types", {"frame": "integer"}, "types.frame: unknown field type 'integer'"),
        ("types", {"t": "%Y%Q"}, "'%Q' is not a strptime directive"),
        ("types", {"t": "%Y%"}, "it ends in a lone '%'"),
        ("types", {1: "int"}, "types has a key that is not a string: 1"),
        ("dims", "plant", "dims must be a list of strings, not a string"),
        ("dims", [["plant"]], "dims[0] must be a string, not a list"),
        ("dims", [True], "dims[0] must be a string, not true/false"),
        ("dims", ["plant", "plant"], "name a field twice"),
        ("dims", ["when"], "cannot be both a dim and a group_by field"),
        ("group_by", "when", "group_by must be a list of strings"),
        ("group_by", [{"a": 1}], "group_by[0] must be a string, not an object"),
        ("on_unmatched", "ignore", "on_unmatched must be one of ['error', 'skip'], not 'ignore'"),
        ("on_unmatched", False, "on_unmatched must be a string, not true/false"),
        ("target", "file", "target must be one of"),
        ("search", "yes", "search must be true or false, not a string"),
        ("recursive", 0, "recursive must be true or false, not a number"),
        ("tables", {"path": "a.csv"}, "tables must be a list of objects, not an object"),
        ("tables", ["info.csv"], "tables[0] must be an object, not a string"),
        ("tables", [{}], "tables[0].path must be a string, not null"),
        ("tables", [{"path": "a.csv"}], "tables[0].file must be a string, not null"),
        ("tables", [{"path": "", "file": "{f}"}], "tables[0].path must not be empty"),
        ("tables.0.path", 3, "tables[0].path must be a string, not a number"),
        ("tables.0.split", ";", "tables[0].split must be an object"),
        ("tables.0.split", {"file": 1}, "tables[0].split.file must be a string"),
        ("tables.0.split", {"file": ""}, "split ['file'] needs a separator"),
        ("tables.0.columns", ["treatment"], "tables[0].columns must be an object"),
        ("tables.0.ignore_extension", "no", "tables[0].ignore_extension must be true or false"),
        ("tables.0.on_missing", "ignore", "tables[0].on_missing must be one of ['error', 'warn']"),
        ("filters", ["plant"], "filters must be an object, not a list"),
        ("filters", {"plant": "A1"}, "filters.plant must be a list of strings, not a string"),
        ("filters", {"plant": [1]}, "filters.plant[0] must be a string, not a number"),
        ("filters", {"plant": None}, "filters.plant must be a list of strings, not null"),
        ("ranges", {"t": "2020"}, "ranges.t must be [low, high], each a string or null"),
        ("ranges", {"t": ["2020"]}, "ranges.t must be [low, high]"),
        ("ranges", {"t": [1, None]}, "ranges.t must be [low, high]"),
        ("ranges", {"t": ["yesterday", None]}, "ranges.t: bound 'yesterday' is not %Y%m%dT"),
        ("ranges", {"frame": [None, "three"]}, "ranges.frame: bound 'three' is not int"),
        ("derived", ["when"], "derived must be an object"),
        ("derived", {"when": 5}, "derived.when must be a string, not a number"),
        ("derived", {"when": "week(t)"}, "derived field 'when': cannot read 'week(t)'"),
        ("derived", {"when": "day(t, 25:00)"}, "day boundary '25:00' is not a time"),
        ("derived", {"when": "strftime(t)"}, "strftime needs a format"),
        ("lookups", {}, "lookups must be a list of objects, not an object"),
        ("lookups", [1], "lookups[0] must be an object, not a number"),
        ("lookups", [{"path": "f.csv"}], "lookups[0].key must be a string, not null"),
        ("lookups.0.column", 1, "lookups[0].column must be a string, not a number"),
        ("lookups.0.columns", {"label": 2}, "lookups[0].columns.label must be a string"),
        ("lookups.0.on_missing", "x", "lookups[0].on_missing must be one of ['error', 'warn']"),
        ("preset", "plantcv", "preset must be an object, not a string"),
        ("extensions", ".png", "extensions must be a list of strings, not a string"),
        ("extensions", [[".png"]], "extensions[0] must be a string, not a list"),
    ],
)
def test_a_malformed_layout_is_a_manifest_error_naming_the_key(path, value, message, tmp_path):
    with pytest.raises(ManifestError) as e:
        load_with(with_value(path, value), tmp_path)
    assert type(e.value) is ManifestError
    assert str(e.value).startswith(PREFIX)
    assert message in str(e.value)


@pytest.mark.parametrize("layout", [None, [], "layout", 3])
def test_a_layout_that_is_no_object_is_a_manifest_error(layout, tmp_path):
    with pytest.raises(ManifestError, match="layout has a wrong type"):
        load_with(layout, tmp_path)


def test_a_missing_or_null_key_takes_its_default(tmp_path):
    assert load_with({}, tmp_path).layout == LayoutSpec()
    nulls = dict.fromkeys(RICH.to_json())
    assert load_with(nulls, tmp_path).layout == LayoutSpec()


def test_tables_and_lookups_read_alone_raise_layout_errors():
    with pytest.raises(LayoutError, match=r"table\.file must be a string, not null"):
        Table.from_json({"path": "a.csv"})
    with pytest.raises(LayoutError, match=r"lookup must be an object, not a list"):
        Lookup.from_json([])  # type: ignore[arg-type]
    assert Table.from_json(RICH.tables[0].to_json()) == RICH.tables[0]


def test_validate_checks_what_json_cannot_express():
    spec = LayoutSpec(pattern=r"(?P<frame>\d+)", types={"frame": "int"}, ranges={"frame": (1, 9)})
    spec.validate()  # ints pass as int bounds, as they convert
    with pytest.raises(LayoutError, match=r"ranges\.frame: bound 'x' is not int"):
        LayoutSpec(
            pattern=r"(?P<frame>\d+)", ranges={"frame": ("x", None)}, types={"frame": "int"}
        ).validate()
    with pytest.raises(LayoutError, match="derived field 'f' must be a text or a callable"):
        LayoutSpec(pattern=r"(?P<a>\d+)", derived={"f": 3}).validate()  # type: ignore[dict-item]
    with pytest.raises(LayoutError, match="a field type must be a string"):
        parse_type(1)  # type: ignore[arg-type]
    assert parse_type("%Y%%%m").fmt == "%Y%%%m"


# values a mutation puts in: JSON of every kind, and texts close to valid ones
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from(
        ["int", "%Y", "%Q", "(?P<a>x)", "(?P<a", "day(t)", "skip", "warn", "{file}", "plant", ""]
    )
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["path", "file", "key", "t", "plant", "x"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)


def places(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index in ``doc``, as paths from the top."""
    out = [here] if here else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += places(v, (*here, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += places(v, (*here, i))
    return out


@settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_randomly_mutated_layout_loads_or_is_a_manifest_error(data, tmp_path):
    doc = json.loads(json.dumps(RICH.to_json()))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from([(), *places(doc)]))
        *parents, last = where or ("pattern",)
        node = doc
        for part in parents:
            node = node[part]
        if data.draw(st.booleans()) and isinstance(node, dict):
            node.pop(last, None)
        elif isinstance(node, dict | list):
            node[last] = data.draw(VALUES)
    try:
        manifest = load_with(doc, tmp_path)
    except ManifestError as e:
        message = str(e)
    else:
        # what loads is a spec that writes itself back
        written = manifest.layout.to_json()
        assert LayoutSpec.from_json(written).to_json() == written
        message = PREFIX
    assert message.startswith(PREFIX)


def test_a_spec_validates_on_construction():
    """An invalid spec cannot exist: construction (and replace) raise, naming the problem."""
    import dataclasses

    from imagezarr.errors import LayoutError
    from imagezarr.layout import LayoutSpec

    with pytest.raises(LayoutError, match="has no named groups"):
        LayoutSpec(pattern=r"A\d+\.png")
    good = LayoutSpec(pattern=r"(?P<plant>A\d+)\.png")
    with pytest.raises(LayoutError, match=r"dims names \['night'\]"):
        dataclasses.replace(good, dims=("night",))
