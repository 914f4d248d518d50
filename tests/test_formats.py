"""The format records: one per format, and everything that names formats derives from them."""

from __future__ import annotations

import re
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import zarr.registry

from imagezarr import formats, probe
from imagezarr.codecs import CODEC_NAMES, pin_codecs
from imagezarr.formats import FORMATS, by_codec, by_extension, by_name, detect_format

SRC = Path(__file__).resolve().parents[1] / "src" / "imagezarr"


def _sample(f: formats.Format) -> bytes:
    if f.encoder is None:
        pytest.skip(f"imagecodecs cannot write {f.label}")
    if not f.is_available():
        pytest.skip(f"this imagecodecs build has no {f.label}")
    pixels = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32)
    if f.name == "webp":  # WebP has no gray images
        pixels = np.stack([pixels] * 3, axis=-1)
    return bytes(getattr(imagecodecs, f.encoder)(pixels))


@pytest.mark.parametrize("f", FORMATS, ids=lambda f: f.name)
def test_each_record_probes_and_decodes_its_own_files(f):
    data = _sample(f)
    assert detect_format(data[:64]) == f.name
    assert [g.name for g in FORMATS if g.magic(data[:64])] == [f.name]  # no other claims it
    info = probe.probe_bytes(data, name=f"sample{f.extensions[0]}")
    assert info.format == f.name
    assert info.codec["name"] == f.codec
    decoded = getattr(imagecodecs, f.decoder)(data)
    assert decoded.shape[:2] == (24, 32)


def test_codecs_and_probes_come_from_the_records():
    pin_codecs()
    assert frozenset(f.codec for f in FORMATS) == CODEC_NAMES
    for f in FORMATS:
        cls = zarr.registry.get_codec_class(f.codec)
        assert cls.__name__ == f.codec_class
        assert cls.format == f.label  # how errors name the format
        assert by_codec(f.codec) is f
        for ext in f.extensions:
            assert by_extension(ext.upper()) is f
    assert probe.EXTENSIONS == formats.EXTENSIONS
    assert sum(len(f.extensions) for f in FORMATS) == len(formats.EXTENSIONS)  # none shared
    assert by_extension(".txt") is None
    with pytest.raises(KeyError, match="unknown image format 'heic'; known: png, jpeg"):
        by_name("heic")


def test_formats_is_free_to_import():
    """The records are read at start-up: they import nothing but the standard library."""
    text = (SRC / "formats.py").read_text()
    imported = re.findall(r"^(?:from|import) ([\w.]+)", text, re.MULTILINE)
    assert set(imported) <= {
        "__future__",
        "importlib",
        "struct",
        "collections.abc",
        "dataclasses",
        "typing",
    }


def test_no_module_keeps_its_own_table_of_formats():
    """A format list outside the records is how a new format gets forgotten somewhere."""
    names = [f.name for f in FORMATS]
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "formats.py":
            continue
        text = path.read_text()
        # a literal naming every format, or their codecs, is a table
        if all(f'"{n}"' in text for n in names) or all(f'"{f.codec}"' in text for f in FORMATS):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []
