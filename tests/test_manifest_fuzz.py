"""Fuzzing the manifest loader: a mutated manifest either fails to load with a ManifestError,
or it loads, opens (store, zarr group, the whole hierarchy, every group in xarray), reads a
chunk with nothing worse than an imagezarr error, and saves back to a document that loads
the same.

Three real manifests are mutated: a small one, one with ``group_by`` and one whose columns are
packed (zstd + base64). Each example applies one to three seeded mutations: deleted keys,
changed types, huge, negative and boundary integers, NaN, nested lists, values swapped between
fields, truncated lists, corrupt or bomb-like packed columns, groups renamed to ``..`` or
duplicated, reserved or colliding names, unsafe paths. The run is derandomized; set
``IMAGEZARR_FUZZ_EXAMPLES`` (per manifest) for a longer one.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imagezarr
import imagezarr.manifest._model as model
from imagezarr.codecs import CODEC_NAMES
from imagezarr.errors import ImageZarrError, ManifestError
from imagezarr.hierarchy import image_array_path
from imagezarr.manifest import Manifest, from_json
from imagezarr.testing import PSII_BY_PLANT, make_psii_experiment
from imagezarr.testing import PSII_SCAN as PSII

EXAMPLES = int(os.environ.get("IMAGEZARR_FUZZ_EXAMPLES", "400"))  # per manifest, ~25 s in all
READ_LIMIT = 2**28  # bytes: a declared image this large is legal, but not worth allocating here

BIG_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**400, -1, 0]
NASTY: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    *BIG_INTS,
    1.5,
    -0.0,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    "",
    "NaN",
    "Infinity",
    "..",
    ".",
    "/",
    "a/b",
    "a//b",
    "\x00",
    "\udc80",
    "CON",
    "C:x",
    "zstd:",
    "zstd:AAAA",
    "zstd:!!!",
    "x" * 5000,
    "2020-01-01T00:00:00",
    "0001-01-01T00:00:00",
    "imagecodecs_png",
    "imagecodecs_zstd",
    [],
    {},
    [[]],
    [["a"]],
    [None],
    [1, 2],
    ["a", "b"],
    {"a": 1},
    {"name": "imagecodecs_png"},
]
GROUP_NAMES = ["..", ".", "", "a//b", "/x", "x/", "__x", "zarr.json", "image", "path"]
GROUP_NAMES += ["A1/image", "A1/present", "C:", "a\\b", "x\x01", "A1", "A2", "A1/A2", "\udc80"]
NAMES = ["..", "", "a/b", "image", "path", "present", "y", "x", "c", "z", "zarr.json", "__c"]
NAMES += ["barcode", "night", "param", "frame", "timestamp", "C:", "a\\b", ["a"], 5, None]
UNSAFE_PATHS = ["../x.png", "/abs.png", "C:x.png", "a/D:/x.png", "a/D:x.png", "NUL.png"]
UNSAFE_PATHS += ["com1.tif", "x/Con .png", "a./b.png", "a /b.png", "a\\b.png", "", "a//b.png"]
UNSAFE_PATHS += ["./x.png", "CONIN$", "x/COM¹.png", "\udc80.png", "a\x00b", "x" * 5000, ".."]
AXES = ["", "yx", "xy", "yxc", "cyx", "zyx", "yxz", "yy", "abc", "yxcz", "YX", 5]
DTYPES = ["uint8", "uint16", "int8", "float64", "complex128", "bool", "object", "<u2", "U5"]
SHAPES: list[Any] = [[12, 16], [16, 12], [12, 16, 3], [2, 12, 16, 3], [1], [0, 16], [12, 0]]
SHAPES += [[2**20, 2**20], [2**20, 16], [2**21, 1], [12, 16, 1, 1, 1], [12.0, 16], [True, 16]]
CODECS: list[Any] = [{"name": n} for n in sorted(CODEC_NAMES)]
CODECS += [
    {"name": "imagecodecs_zstd"},
    {"name": "imagecodecs_nope"},
    {"name": "imagecodecs_png", "configuration": {"level": 3}},
    {"name": "imagecodecs_png", "configuration": {"bogus": 1}},
    {"name": "imagecodecs_png", "configuration": []},
    {"name": "imagecodecs_png", "extra": 1},
    {"name": "imagecodecs_tiff", "configuration": {"index": "x"}},
    {"name": "imagecodecs_tiff", "configuration": {"photometric": "bogus"}},
    {"name": "imagecodecs_jpeg2k", "configuration": {"numthreads": 10**6}},
    {"name": "imagecodecs_jpeg", "configuration": {"header": "abc"}},
    {"name": ["imagecodecs_png"]},
    {},
]
IMAGE_FIELDS: list[tuple[str, list[Any]]] = [
    ("axes", AXES),
    ("dtype", DTYPES),
    ("shape", SHAPES),
    ("codec", CODECS),
    ("format", ["png", "tiff", "gif", "PNG", "", 5]),
    ("palette", ["ab", "XYZ", 1, "0" * 65]),
]
COORD_VALUES: list[Any] = [2**63, 2**70, -(2**63) - 1, 10**400, 1.5, math.nan, math.inf, None]
COORD_VALUES += ["2020-01-01T00:00:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59"]
COORD_VALUES += ["2020-01-01T00:00:00+05:00", "not a date", True, "", "\udc80", [1], {}]
ATTRS: list[Any] = [{"a": math.nan}, {"a": 2**70}, {"imagezarr": 1}, {"coordinates": "x"}]
ATTRS += [{"_ARRAY_DIMENSIONS": ["a"]}, {"a": "\udc80"}, {"\udc80": 1}, [], "x", {"a": [[[]]]}]


# -- the three manifests ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], Path]]:
    """name -> (document, folder it is loaded from); the images exist, so chunks decode."""
    top = tmp_path_factory.mktemp("fuzz")
    images = top / "images"
    make_psii_experiment(
        images, plants=3, nights=2, steps=2, frames=2, shape=(12, 16), holes=1, seed=3
    )
    small = imagezarr.scan(images, **PSII)
    grouped = imagezarr.scan(images, **PSII_BY_PLANT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model, "PACK_ABOVE", 4)  # pack every column, as a large manifest does
        packed = imagezarr.scan(images, **PSII, checksum=True).to_json(root=str(images))
    assert isinstance(packed["files"]["path"], str)
    assert isinstance(packed["groups"][0]["chunks"], str)
    docs = {
        "small": small.to_json(root=str(images)),
        "grouped": grouped.to_json(root=str(images)),
        "packed": packed,
    }
    return {name: (json.loads(json.dumps(doc)), top) for name, doc in docs.items()}


# -- mutations ----------------------------------------------------------------------------


def pack(data: bytes) -> str:
    return model._pack(data)


def pick(doc: Any, rng: random.Random) -> tuple[Any, Any] | None:
    """A random (container, key) in ``doc``: a random walk that stops at any depth."""
    parent, key, node = None, None, doc
    while isinstance(node, dict | list) and node and (parent is None or rng.random() < 0.7):
        k = rng.choice(list(node) if isinstance(node, dict) else range(len(node)))
        parent, key, node = node, k, node[k]
    return None if parent is None else (parent, key)


def retype(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return rng.choice([str(value), float(min(value, 2**1000)), [value], True, None])
    if isinstance(value, float):
        return rng.choice([int(value) if math.isfinite(value) else 0, str(value)])
    if isinstance(value, str):
        hexed = value.encode("utf-8", "surrogatepass").hex()
        return rng.choice([[value], hexed, len(value), {value: value}, None])
    if isinstance(value, list):
        return rng.choice([dict(enumerate(value)), json.dumps(value)[:50], value[:1], None])
    if isinstance(value, dict):
        return rng.choice([list(value.values()), list(value), json.dumps(value)[:50], None])
    return rng.choice(NASTY)


def generic(doc: dict[str, Any], rng: random.Random) -> None:
    """Mutate a random spot of the document, whatever it is."""
    spot = pick(doc, rng)
    if spot is None:
        return
    parent, key = spot
    value = parent[key]
    op = rng.choice(["delete", "nasty", "retype", "number", "swap", "truncate", "grow", "nest"])
    if op == "delete":
        del parent[key]
    elif op == "nasty":
        parent[key] = copy.deepcopy(rng.choice(NASTY))
    elif op == "retype":
        parent[key] = retype(value, rng)
    elif op == "number" and isinstance(value, int):
        parent[key] = rng.choice([value + 1, value - 1, -value, value * 2**32, *BIG_INTS])
    elif op == "swap":
        other = pick(doc, rng)
        if other is not None:
            o_parent, o_key = other
            # copies: swapping a value with one inside it must not make a cycle
            parent[key], o_parent[o_key] = copy.deepcopy(o_parent[o_key]), copy.deepcopy(value)
    elif op == "truncate" and isinstance(value, list | str):
        parent[key] = value[: rng.randrange(len(value) + 1)]
    elif op == "grow" and isinstance(value, list) and value:
        value.append(copy.deepcopy(rng.choice(value)))
    else:
        parent[key] = [value]


def a_group(doc: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    groups = doc.get("groups")
    if isinstance(groups, list) and groups and isinstance(groups[0], dict):
        g = rng.choice(groups)
        return g if isinstance(g, dict) else None
    return None


def group_level(doc: dict[str, Any], rng: random.Random) -> None:
    """Mutate what makes groups, names, images and coordinates."""
    g = a_group(doc, rng)
    if g is None:
        return generic(doc, rng)
    image = g.get("image") if isinstance(g.get("image"), dict) else {}
    coords = g.get("coords") if isinstance(g.get("coords"), dict) else {}
    op = rng.randrange(10)
    if op == 0:
        others = [h.get("path") for h in doc["groups"] if isinstance(h, dict)]
        g["path"] = rng.choice([*GROUP_NAMES, *others])
    elif op == 1:
        doc["groups"].append(copy.deepcopy(g))
    elif op == 2 and coords:
        coords[str(rng.choice(NAMES))] = coords.pop(rng.choice(list(coords)))
    elif op == 3 and isinstance(g.get("dims"), list) and g["dims"]:
        g["dims"][rng.randrange(len(g["dims"]))] = rng.choice(NAMES)
    elif op == 4:
        key, choices = rng.choice(IMAGE_FIELDS)
        image[key] = copy.deepcopy(rng.choice(choices))
    elif op == 5 and coords:
        c = coords[rng.choice(list(coords))]
        if isinstance(c, dict) and isinstance(c.get("values"), list) and c["values"]:
            c["values"][rng.randrange(len(c["values"]))] = rng.choice(COORD_VALUES)
        elif isinstance(c, dict):
            c["kind"] = rng.choice(["int", "float", "str", "datetime", "bool", None])
    elif op == 6 and coords:
        c = coords[rng.choice(list(coords))]
        if isinstance(c, dict):
            dims = g.get("dims") if isinstance(g.get("dims"), list) else []
            c["dims"] = rng.choice([[], dims, dims[:1] * 2, [["a"]], ["nope"], dims[::-1]])
    elif op == 7:
        g["attrs"] = copy.deepcopy(rng.choice(ATTRS))
    elif op == 8 and isinstance(g.get("shape"), list) and g["shape"]:
        i = rng.randrange(len(g["shape"]))
        g["shape"][i] = rng.choice([0, -1, 2**40, 2**41, 2**63, 1, 2, g["shape"][i] + 1])
    else:
        chunks = g.get("chunks")
        if isinstance(chunks, list) and chunks:
            chunks[rng.randrange(len(chunks))] = rng.choice([-2, -1, 0, 10**6, *BIG_INTS])
        else:
            g["chunks"] = packed_variant(chunks, rng)
    return None


def packed_variant(value: Any, rng: random.Random) -> Any:
    """A corrupt, truncated, bomb-like or well-formed-but-wrong packed column."""
    text = value if isinstance(value, str) else pack(b"")
    try:
        raw = base64.b64decode(text[5:]) if text.startswith("zstd:") else b""
    except ValueError:  # already corrupted by an earlier mutation
        raw = b""
    op = rng.randrange(9)
    if op == 0:  # flip a base64 character
        i = rng.randrange(5, max(6, len(text)))
        return text[:i] + rng.choice("A/+=!") + text[i + 1 :]
    if op == 1:
        return text[: rng.randrange(len(text) + 1)]
    if op == 2:  # a bomb
        return pack(b"\0" * rng.choice([10**6, 8 * 10**6]))
    if op == 3:  # the frame without its declared size (descriptor byte cleared)
        return "zstd:" + base64.b64encode(raw[:4] + b"\0" + raw[5:]).decode()
    if op == 4:  # a lying declared size
        fake = raw[:4] + b"\xe0" + raw[5:]
        return "zstd:" + base64.b64encode(fake).decode()
    if op == 5:
        return pack(b"\xff\xfe" * rng.randrange(1, 100))  # not UTF-8, odd lengths
    if op == 6:  # plausible ints: huge, negative, out of range
        n = rng.randrange(0, 40)
        words = rng.choices(BIG_INTS[:7], k=n)
        return pack(b"".join((w % 2**64).to_bytes(8, "little") for w in words))
    if op == 7:  # plausible paths, some unsafe
        paths = rng.choices([*UNSAFE_PATHS, "ok.png"], k=rng.randrange(40))
        return pack("\0".join(paths).encode("utf-8", "surrogatepass"))
    return "zstd:" + base64.b64encode(imagecodecs.zstd_encode(raw + raw)).decode()


def files_level(doc: dict[str, Any], rng: random.Random) -> None:
    """Mutate the file table: paths, columns, packing, count."""
    files = doc.get("files")
    if not isinstance(files, dict):
        return generic(doc, rng)
    op = rng.randrange(6)
    column = rng.choice(["path", "size", "mtime_ns", "etag", "checksum", "count"])
    value = files.get(column)
    if op == 0 and isinstance(files.get("path"), list) and files["path"]:
        files["path"][rng.randrange(len(files["path"]))] = rng.choice(UNSAFE_PATHS)
    elif op == 1 and isinstance(value, list) and value:
        value[rng.randrange(len(value))] = rng.choice([*BIG_INTS, "x" * 2000, "xxh3:zz", 1.0])
    elif op == 2:
        files[column] = packed_variant(value, rng)
    elif op == 3:
        files["count"] = rng.choice([0, 1, 2**27, 2**27 + 1, -1, len(files.get("size") or [])])
    elif op == 4 and isinstance(value, list):
        del value[rng.randrange(len(value) + 1) :]
    else:
        files.pop(column, None)
    return None


def top_level(doc: dict[str, Any], rng: random.Random) -> None:
    key = rng.choice(["unmatched", "unreadable", "created", "root", "generator", "layout"])
    doc[key] = copy.deepcopy(
        rng.choice([*NASTY, [1, 2], ["ok", 5], -5, "", "rel/images", {"pattern": 5}])
    )


MUTATIONS = [generic, generic, group_level, group_level, files_level, top_level]


def mutated(doc: dict[str, Any], seed: int, steps: int) -> dict[str, Any]:
    rng = random.Random(seed)
    out = copy.deepcopy(doc)
    for _ in range(steps):
        try:
            rng.choice(MUTATIONS)(out, rng)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            continue  # an earlier mutation left a shape this one does not expect
    return out


# -- the property ---------------------------------------------------------------------------


def open_everything(m: Manifest) -> None:
    """Open as the users do: store, zarr group, the whole hierarchy, each group in xarray,
    and one present chunk of each image array."""
    store = imagezarr.open_store(m)
    root = zarr.open_group(store, mode="r")
    list(root.members(max_depth=None))
    for node in m.nodes:
        imagezarr.open_dataset(m, group=node.path).close()
        present = np.argwhere(node.file_index >= 0)
        nbytes = math.prod(node.image.shape) * np.dtype(node.image.dtype).itemsize
        if len(present) and nbytes <= READ_LIMIT:
            array = root[image_array_path(node)]
            assert isinstance(array, zarr.Array)
            array[tuple(int(i) for i in present[0])]


def outcome(doc: dict[str, Any], folder: Path) -> str:
    """How a document fares: 'refused: <error>', 'read: <error>' or 'opened'; any other
    exception fails the test, naming what was raised."""
    try:
        m = from_json(copy.deepcopy(doc), base=folder, name="fuzz.imagezarr.json")
    except ManifestError as e:
        return f"refused: {type(e).__name__}"
    except Exception as e:
        raise AssertionError(f"loading raised {type(e).__name__}: {e}") from e
    try:  # what loads saves back, as strict JSON, and loads as the same manifest
        text = json.dumps(m.to_json(), allow_nan=False)
        again = from_json(json.loads(text), base=folder, name="saved")
        assert again.to_json() == m.to_json()
    except Exception as e:
        raise AssertionError(f"saving back raised {type(e).__name__}: {e}") from e
    try:
        open_everything(m)
    except ImageZarrError as e:
        return f"read: {type(e).__name__}"
    except Exception as e:
        raise AssertionError(f"opening raised {type(e).__name__}: {e}") from e
    return "opened"


@pytest.mark.parametrize("base", ["small", "grouped", "packed"])
def test_the_unmutated_manifests_open(bases, base):
    doc, folder = bases[base]
    assert outcome(doc, folder) == "opened"


@pytest.mark.parametrize("base", ["small", "grouped", "packed"])
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 3))
def test_mutated_manifests_are_refused_or_open(bases, base, seed, steps):
    doc, folder = bases[base]
    outcome(mutated(doc, seed, steps), folder)


def fuzz_counts(bases: dict[str, tuple[dict[str, Any], Path]], n: int) -> Counter[str]:
    """``n`` seeded mutations of each manifest, counted by outcome (for long runs by hand:
    ``python -c "..."`` with the ``bases`` fixture's body)."""
    counts: Counter[str] = Counter()
    for name, (doc, folder) in bases.items():
        for seed in range(n):
            counts[f"{name} {outcome(mutated(doc, seed, 1 + seed % 3), folder)}"] += 1
    return counts


def test_the_mutations_reach_every_outcome(bases):
    """A fuzzer whose mutants were all refused (or all harmless) would prove nothing."""
    counts = fuzz_counts(bases, 60)
    kinds = {n: {k.split(" ")[1].rstrip(":") for k in counts if k.startswith(n)} for n in bases}
    assert all({"refused", "opened"} <= seen for seen in kinds.values()), counts
    assert any("read" in seen for seen in kinds.values()), counts  # a chunk read failed cleanly
