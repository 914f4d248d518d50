"""Run PlantCV's own ``metadata_parser`` on the parity configurations; print or save its choices.

Runs in a Python environment that has ``plantcv`` (keep it apart from imagezarr's: plantcv pins an
older numpy), e.g.::

    python3.12 -m venv /tmp/pcv && /tmp/pcv/bin/pip install plantcv
    /tmp/pcv/bin/python benchmarks/plantcv_parity.py --data ../shared/data/plantcv-testdata \\
        --out tests/data/plantcv_parity_expected.json

It reads ``tests/data/plantcv_parity_configs.json`` (each case: a PlantCV workflow configuration
with ``input_dir`` relative to ``--data``) and writes, per case, what PlantCV selects: the files
that exist (``selected``), the paths it selects that are not there (``selected_absent``: rows of
a ``SnapshotInfo.csv`` or ``metadata.json`` naming missing files), why it removed the others
(``removed``, PlantCV's own status text), or the error it raised (``error``). Paths are relative
to the input folder, with ``/``. ``tests/test_plantcv_parity.py`` compares imagezarr's selection
with the saved file, and with a live run of this script when ``/tmp/pcv`` has plantcv.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "tests" / "data" / "plantcv_parity_configs.json"


def _rel(path: str, top: str) -> str:
    return os.path.relpath(path, top).replace(os.sep, "/")


def run_case(config: dict, data: Path) -> dict:
    """PlantCV's selection for one configuration (``input_dir`` relative to ``data``)."""
    from plantcv.parallel import WorkflowConfig, metadata_parser

    wc = WorkflowConfig()
    top = os.path.normpath(data / config["input_dir"])
    for key, value in config.items():
        setattr(wc, key, value)
    wc.input_dir = top
    try:
        # PlantCV prints warnings (estimated filename_metadata) and pandas warns: keep quiet
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            meta, removed = metadata_parser(config=wc)
    except Exception as e:  # the error is the outcome of the case
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
    chosen = sorted({_rel(p, top) for p in meta.obj["filepath"]})
    out: dict = {
        "selected": [p for p in chosen if os.path.isfile(os.path.join(top, p))],
        "selected_absent": [p for p in chosen if not os.path.isfile(os.path.join(top, p))],
        "removed": {},
    }
    if len(removed):
        for path, status in zip(removed["filepath"], removed["status"], strict=True):
            out["removed"][_rel(path, top)] = status
    out["removed"] = dict(sorted(out["removed"].items()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="PlantCV's test data folder")
    parser.add_argument("--configs", type=Path, default=CONFIGS)
    parser.add_argument("--out", default="-", help="JSON file to write, or - for stdout")
    args = parser.parse_args(argv)
    from importlib.metadata import version

    cases = json.loads(args.configs.read_text())["cases"]
    doc = {
        "about": "Written by benchmarks/plantcv_parity.py from PlantCV's metadata_parser; "
        "do not edit by hand.",
        "plantcv": version("plantcv"),
        "cases": {c["name"]: run_case(c["config"], args.data) for c in cases},
    }
    text = json.dumps(doc, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
