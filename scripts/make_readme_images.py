"""Make the README's contact sheet from the demo data, with the README's own commands.

Run: ``.venv/bin/python scripts/make_readme_images.py``. Generates the demo's PSII experiment
(``imagezarr.testing.make_psii_experiment``, 12 plants so that A2 < A10 shows) in a temporary
folder, runs the README's ``imagezarr scan`` and ``imagezarr preview`` commands on it as they
are written there, and writes ``docs/images/psii-contact-sheet.png``. The data are seeded, so
the image only changes when the code drawing it does.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from imagezarr.cli import main
from imagezarr.testing import make_psii_experiment

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
OUT = REPO / "docs" / "images" / "psii-contact-sheet.png"


def readme_command(start: str) -> list[str]:
    """The arguments of the README's ```console block that starts with ``start``."""
    found = re.search(rf"```console\n({re.escape(start)}.*?)```", README.read_text(), re.DOTALL)
    if found is None:
        sys.exit(f"README.md has no console block starting with {start!r}")
    return shlex.split(found.group(1).replace("\\\n", " "))[1:]


def main_script() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        make_psii_experiment(Path(tmp) / "images", plants=12, nights=3, steps=4, frames=3)
        here = Path.cwd()
        os.chdir(tmp)  # the README's commands use relative paths
        try:
            for start in ("imagezarr scan images/", "imagezarr preview"):
                code = main(readme_command(start))
                if code:
                    return code
            made = Path(tmp) / "sheet.png"
            OUT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, OUT)
        finally:
            os.chdir(here)
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_script())
