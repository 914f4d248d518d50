"""The fast paths of a large scan give exactly what the general code gives.

Each shortcut (the lean PNG header read, the batched local probe, the one-go chunk fill, the
ASCII natural key, the plain-type kind check) is compared with the general code it bypasses,
on ordinary and on hostile input.
"""

from __future__ import annotations

import importlib
import random
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest

import imagezarr
from imagezarr.discover import FileEntry, discover
from imagezarr.errors import DuplicateIndexError, LayoutError, ProbeError
from imagezarr.layout import match as layout_match
from imagezarr.probe import _many, _png, probe_bytes
from imagezarr.roots import LocalRoot
from imagezarr.roots import _local as roots_local

# the module: the package's own attribute `arrange` is the function it re-exports
layout_arrange = importlib.import_module("imagezarr.layout.arrange")


def chunk(kind: bytes, data: bytes = b"") -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(
    width: int = 5,
    height: int = 3,
    depth: int = 8,
    colour: int = 0,
    interlace: int = 0,
    before: tuple[bytes, ...] = (),
    ihdr_length: int = 13,
) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    head = struct.pack(">I", ihdr_length) + b"IHDR" + ihdr + b"\0\0\0\0"
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 16))
    return _png.SIGNATURE + head + b"".join(before) + idat + chunk(b"IEND")


TRNS = chunk(b"tRNS", b"\0\1")
PLTE = chunk(b"PLTE", b"\0\0\0" * 4)
TEXT = chunk(b"tEXt", b"Comment\0" + b"x" * 300)
HEADERS = {
    "gray8": png(),
    "gray1": png(depth=1),
    "gray16": png(depth=16),
    "gray-trns": png(before=(TRNS,)),
    "rgb8": png(colour=2),
    "rgb16-trns-after-text": png(colour=2, depth=16, before=(TEXT, TRNS)),
    "palette4": png(colour=3, depth=4, before=(PLTE,)),
    "palette8-trns": png(colour=3, before=(PLTE, TRNS)),
    "gray-alpha": png(colour=4),
    "rgba16": png(colour=6, depth=16),
    "interlaced": png(colour=2, interlace=1),
    "imagecodecs-rgba": imagecodecs.png_encode(np.zeros((4, 6, 4), np.uint8)),
    # hostile: the lean path must step aside and let the general probe report
    "bad-interlace": png(interlace=2),
    "bad-depth": png(colour=2, depth=4),
    "bad-colour": png(colour=5),
    "zero-width": png(width=0),
    "huge": png(width=2**21),
    "ihdr-length": png(ihdr_length=12),
    "huge-chunk": png(before=(struct.pack(">I", 2**31) + b"tEXt",)),
    "truncated-ihdr": png()[:30],
    "no-idat": _png.SIGNATURE + png()[8:33] + chunk(b"tEXt", b"x"),
    "signature-only": _png.SIGNATURE,
}


def general(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch the lean PNG path off: every file takes the general probe."""
    monkeypatch.setattr(_png, "read_head", lambda head: None)
    monkeypatch.setattr(_many, "read_head", lambda head: None)


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        result = fn(*args, **kwargs)
    except ProbeError as e:
        return ("error", type(e).__name__, str(e), e.path)
    return _seen(result)


def _seen(result: Any) -> Any:
    if isinstance(result, ProbeError):
        return ("error", type(result).__name__, str(result), result.path)
    return result


@pytest.mark.parametrize("name", HEADERS)
def test_lean_png_read_matches_general_probe(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = HEADERS[name]
    lean = outcome(probe_bytes, data, name=name)
    with monkeypatch.context() as m:
        general(m)
        assert outcome(probe_bytes, data, name=name) == lean
    if name.startswith(("bad", "zero", "huge", "ihdr", "truncated", "no-", "signature")):
        assert _png.read_head(data) is None


def test_lean_png_read_gives_up_beyond_the_first_read() -> None:
    # the tRNS after a long chunk lies beyond the head: only the general probe can see it
    data = png(colour=2, before=(chunk(b"tEXt", b"x" * 100), TRNS))
    assert _png.read_head(data[:60]) is None
    assert probe_bytes(data).shape == (3, 5, 4)


def write_files(folder: Path) -> list[FileEntry]:
    files = {f"{name}.png": data for name, data in HEADERS.items()}
    files.update(
        {
            "again-gray8.png": HEADERS["gray8"],
            "empty.png": b"",
            "text.png": b"not an image",
            "photo.jpg": imagecodecs.jpeg8_encode(np.zeros((4, 6), np.uint8)),
        }
    )
    for name, data in files.items():
        (folder / name).write_bytes(data)
    entries = discover(folder, extensions={".png", ".jpg"})
    return [*entries, FileEntry("gone.png", 10, 0)]


def test_local_batch_matches_file_by_file_general_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = write_files(tmp_path)
    root = LocalRoot(str(tmp_path))
    batch = [_seen(r) for r in _many._probe_batch(root, entries)]
    with monkeypatch.context() as m:
        general(m)
        one_by_one = [_seen(_many._probe_file(root, e, {})) for e in entries]
    assert batch == one_by_one
    assert batch[-1][2].startswith("gone.png: cannot read: ")
    # Windows has no os.pread: the seek + read fallback must probe exactly the same
    with monkeypatch.context() as m:
        m.setattr(roots_local, "_HAS_PREAD", False)
        m.delattr(roots_local.os, "pread")
        general(m)
        assert [_seen(_many._probe_file(root, e, {})) for e in entries] == batch


def test_one_batch_shares_equal_image_infos(tmp_path: Path) -> None:
    entries = write_files(tmp_path)
    by_path = dict(
        zip(
            [e.path for e in entries],
            _many._probe_batch(LocalRoot(str(tmp_path)), entries),
            strict=True,
        )
    )
    assert by_path["again-gray8.png"] is by_path["gray8.png"]


def psii_folder(folder: Path) -> None:
    data = imagecodecs.png_encode(np.zeros((3, 4), np.uint8))
    for plant in ("A2", "A10", "B1"):
        for frame in (1, 2, 10):
            for param in ("Fo", "Fm"):
                (folder / f"{plant}_{param}_{frame}.png").write_bytes(data)


PATTERN = r"(?P<plant>\w+?)_(?P<param>\w+)_(?P<frame>\d+)\.png"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pattern": PATTERN, "types": {"frame": "int"}},
        {"pattern": PATTERN, "group_by": "plant", "dims": "frame"},  # param: a coordinate
    ],
    ids=["no-pattern", "all-dims", "non-dim-field"],
)
def test_scan_same_manifest_without_fast_paths(
    options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    psii_folder(tmp_path)
    options = {**options, "on_unmatched": "skip"}
    if options.get("dims") == "frame":
        options["pattern"] = r"(?P<plant>\w+?)_(?P<param>Fm)_(?P<frame>\d+)\.png"
    fast = imagezarr.scan(tmp_path, **options).to_json()
    with monkeypatch.context() as m:
        general(m)
        m.setattr(layout_arrange, "_fill_unique", lambda chunks, members, positions: False)
        slow = imagezarr.scan(tmp_path, **options).to_json()
    fast.pop("created")
    slow.pop("created")
    assert fast == slow


def test_duplicate_slots_raise_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    psii_folder(tmp_path)
    only_plant = r"(?P<plant>\w+?)_\w+\.png"  # no other field: the one-go fill is tried first
    with pytest.raises(DuplicateIndexError) as fast:
        imagezarr.scan(tmp_path, pattern=only_plant)
    with monkeypatch.context() as m:
        m.setattr(layout_arrange, "_fill_unique", lambda chunks, members, positions: False)
        with pytest.raises(DuplicateIndexError) as slow:
            imagezarr.scan(tmp_path, pattern=only_plant)
    assert str(fast.value) == str(slow.value)
    assert str(fast.value).startswith("3 slot(s) of array 'image' with dims ['plant'] have more")


_RUNS = re.compile(r"(\d+)")


def reference_natural_key(text: str) -> tuple[Any, ...]:
    parts: list[Any] = _RUNS.split(text)
    parts[1::2] = map(int, parts[1::2])
    parts[0::2] = map(str.casefold, parts[0::2])
    return (tuple(parts), text)


def test_natural_key_ascii_shortcut_matches_casefold_per_part() -> None:
    rng = random.Random(7)
    alphabet = "aZk_-./ 0123456789" + "\u017f\u212a\u0130\u0131\u00df\u0663"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert layout_match.natural_key(text) == reference_natural_key(text)


def test_kind_shortcut_keeps_bool_and_mixed_rules() -> None:
    assert layout_arrange._kind(["a", "b"]) == "str"
    assert layout_arrange._kind([1, 2]) == "int"
    assert layout_arrange._kind([1, 2.5]) == "float"
    assert layout_arrange._kind([True, False]) == "str"
    with pytest.raises(LayoutError, match=r"field 'x' mixes value kinds \['int', 'str'\]"):
        layout_arrange._kind([1, "a"], "x")


def test_sorted_labels_follow_sort_key() -> None:
    values = ["A10", "a2", "A1", "A10", "b", None]
    assert layout_arrange._sorted_labels(values) == sorted(set(values), key=layout_match._sort_key)
    assert layout_arrange._sorted_labels(["A10", "a2"]) == ["a2", "A10"]
