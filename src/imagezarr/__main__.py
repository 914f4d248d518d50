"""``python -m imagezarr``: the command line, for where the ``imagezarr`` script is not on PATH."""

from __future__ import annotations

from ._entry import main

if __name__ == "__main__":
    main()
