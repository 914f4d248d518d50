"""The package version: the one place it is written (pyproject.toml reads it from here).

A literal rather than ``importlib.metadata.version("imagezarr")``: reading the installed
metadata costs ~35 ms at every start of the command line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
