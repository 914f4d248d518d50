"""Results that last: the table rewritten atomically as groups finish, images as files."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MapError
from ..roots import is_inside, write_atomic
from ._groups import ERROR, GROUP, UNSAFE, _Group, _Outcome, _text

MAX_STEM = 120  # characters of labels in an output file name (file systems allow 255 bytes)


class _Results:
    """The results table and the image files, kept on disk as groups finish."""

    def __init__(
        self,
        out: Path | None,
        by: list[str],
        meta: dict[str, Any],
        resume: bool,
        source_root: str,
        force: bool,
    ) -> None:
        self.out, self.by, self.meta = out, by, meta
        self.rows: dict[tuple[str, ...], dict[str, Any]] = {}
        self.saved = time.monotonic()
        self.index: dict[str, list[dict[str, Any]]] = {}  # image name -> index.csv rows
        self.images = None if out is None else out.with_name(out.name.rsplit(".", 1)[0] + "_images")
        if out is None:
            return
        for target in (out, self.images):
            if not force and is_inside(target, source_root):
                msg = (
                    f"refusing to write {str(target)!r} inside the source folder "
                    f"{source_root!r}: imagezarr never writes into the source; choose an "
                    "output elsewhere"
                )
                raise MapError(msg)
        if resume and out.exists():
            self._load(out)

    def _load(self, out: Path) -> None:
        import pandas as pd

        recorded = self._recorded(out)
        if recorded.get("function") not in (None, self.meta["function"]):
            msg = (
                f"{str(out)!r} holds the results of {recorded['function']!r}, not of "
                f"{self.meta['function']!r}: choose another output, or run again from the "
                "start (resume=False, --again)"
            )
            raise MapError(msg)
        if out.suffix == ".csv":
            typed = pd.read_csv(out)
            texts = pd.read_csv(out, dtype=str, keep_default_na=False).to_dict("records")
        else:
            typed = pd.read_parquet(out)
            texts = [{k: _text(v) for k, v in r.items()} for r in typed.to_dict("records")]
        labels = [c for c in typed.columns if c == GROUP or c in self.by]
        for text, record in zip(texts, typed.to_dict("records"), strict=True):
            if text.get(ERROR):
                continue  # failed: run again
            self.rows[tuple(text[c] for c in labels)] = record
        if self.images is not None and self.images.is_dir():
            for index in self.images.glob("*/index.csv"):
                rows = pd.read_csv(index, dtype=str, keep_default_na=False).to_dict("records")
                self.index[index.parent.name] = rows

    def _recorded(self, out: Path) -> dict[str, Any]:
        if out.suffix == ".parquet":
            import pyarrow.parquet as pq

            raw = (pq.read_schema(out).metadata or {}).get(b"imagezarr")
            return json.loads(raw) if raw else {}
        side = out.with_name(out.name + ".json")
        return json.loads(side.read_text(encoding="utf-8")) if side.exists() else {}

    def done(self, group: _Group) -> bool:
        return group.key() in self.rows

    def add(self, group: _Group, outcome: _Outcome) -> None:
        row = {**group.labels, **outcome.values, ERROR: outcome.error}
        for name, pixels in outcome.images.items():
            # no output: the arrays stay in the table (an object column); else files
            row[name] = pixels if self.images is None else self._write_image(name, group, pixels)
        self.rows[group.key()] = row

    def _write_image(self, name: str, group: _Group, pixels: np.ndarray) -> str:
        assert self.images is not None
        folder = self.images / UNSAFE.sub("_", name)[:MAX_STEM]
        stem = "_".join(UNSAFE.sub("_", _text(v)) for v in group.labels.values())[:MAX_STEM]
        stem = stem or "image"
        # labels that differ only in left-out characters must not share a file
        digest = hashlib.blake2b("\0".join(group.key()).encode(), digest_size=4).hexdigest()
        data, suffix = _encode(pixels)
        file = f"{stem}-{digest}{suffix}"
        write_atomic(folder / file, data)
        rows = [r for r in self.index.get(folder.name, []) if r["file"] != file]
        rows.append({"file": file, **{k: _text(v) for k, v in group.labels.items()}})
        self.index[folder.name] = rows
        return f"{folder.name}/{file}"

    def table(self, order: Sequence[_Group]) -> Any:
        import pandas as pd

        known = {g.key(): i for i, g in enumerate(order)}
        rows = sorted(self.rows.items(), key=lambda kv: known.get(kv[0], len(known)))
        table = pd.DataFrame([r for _, r in rows])
        if table.empty:
            table = pd.DataFrame(columns=[*order[0].labels, ERROR] if order else [ERROR])
        columns = [c for c in table.columns if c != ERROR] + [ERROR]
        table = table[columns]
        for column in columns[:-1]:  # whole numbers stay whole beside a failed group's gap
            raw = [r[column] for _, r in rows if column in r and not _missing(r[column])]
            if raw and all(isinstance(v, int | np.integer) and type(v) is not bool for v in raw):
                table[column] = table[column].astype("Int64")
        table[ERROR] = table[ERROR].fillna("").astype(str)
        return table

    def save(self, order: Sequence[_Group]) -> None:
        self.saved = time.monotonic()
        if self.out is None:
            return
        import pandas as pd

        table = self.table(order)
        for name, rows in self.index.items():
            assert self.images is not None
            buf = io.StringIO()
            pd.DataFrame(rows).to_csv(buf, index=False)
            write_atomic(self.images / name / "index.csv", buf.getvalue().encode())
        if self.out.suffix == ".csv":
            written = table.copy()
            for column in written.columns:  # times as ISO text, which a rerun reads back
                if written[column].dtype.kind == "M":
                    written[column] = written[column].map(_text)
            buf = io.StringIO()
            written.to_csv(buf, index=False)
            side = self.out.with_name(self.out.name + ".json")
            write_atomic(side, json.dumps(self.meta).encode())
            write_atomic(self.out, buf.getvalue().encode())
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        meta = {**(arrow.schema.metadata or {}), b"imagezarr": json.dumps(self.meta).encode()}
        sink = io.BytesIO()
        pq.write_table(arrow.replace_schema_metadata(meta), sink)
        write_atomic(self.out, sink.getvalue())

    def describe_images(self, types: Mapping[str, str]) -> list[Path]:
        """A manifest per image name, giving its files the groups' labels."""
        from ..api import scan
        from ..layout import Table

        made = []
        for name in sorted(self.index):
            assert self.images is not None
            folder = self.images / name
            fields = [c for c in self.index[name][0] if c != "file"]
            m = scan(
                folder,
                tables=[Table(str(folder / "index.csv"), file="{file}")],
                dims=fields,
                types={k: v for k, v in types.items() if k in fields},
            )
            made.append(m.save(self.images / f"{name}.imagezarr.json"))
        return made


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN


def _encode(pixels: np.ndarray) -> tuple[bytes, str]:
    """Lossless bytes of an output image: PNG for 8/16-bit (gray, RGB, RGBA), else TIFF."""
    import imagecodecs

    if pixels.dtype in (np.uint8, np.uint16) and (pixels.ndim == 2 or pixels.shape[2] in (3, 4)):
        return imagecodecs.png_encode(np.ascontiguousarray(pixels)), ".png"
    if pixels.dtype == bool:
        # a mask: 0 and 255 as PlantCV writes them, so a file browser shows it (0 and 1
        # would look black); the PNG codec has no 1-bit writer for bool arrays
        return imagecodecs.png_encode(pixels.astype(np.uint8) * 255), ".png"
    return imagecodecs.tiff_encode(np.ascontiguousarray(pixels), compression="zlib"), ".tif"
