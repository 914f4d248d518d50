"""Layout: file names → typed fields → groups, arrays, dims and coordinates.

Pure: takes values, returns values, touches no file. Four modules, each importing only
the ones before it:

- :mod:`.spec`: :class:`LayoutSpec`, the regex, field types, dims and grouping, with the
  :class:`Table`\\ s and :class:`Lookup`\\ s it joins; it validates every document it reads.
- :mod:`._tables`: joins the sidecar tables listing files to the scanned paths.
- :mod:`.match`: :func:`match_fields` parses every relative path into typed fields, joins
  tables, filters, derives fields and joins lookups; it reports every file it leaves out as
  an :class:`Exclusion` with its reason.
- :mod:`.arrange`: :func:`arrange` turns matched files and their probed ``ImageInfo`` into
  :class:`Node`\\ s, one per group, each holding one image array with labeled outer dims.
"""

from __future__ import annotations

from .arrange import arrange
from .match import (
    FILTERED,
    NO_FILE,
    NOT_LISTED,
    NOT_MATCHED,
    REASONS,
    Exclusion,
    NameTest,
    day,
    exclusion_counts,
    match_fields,
    natural_key,
    table_paths,
)
from .model import Coord, Node
from .spec import Derivation, FieldType, LayoutSpec, LayoutWarning, Lookup, Table, parse_type

__all__ = [
    "FILTERED",
    "NOT_LISTED",
    "NOT_MATCHED",
    "NO_FILE",
    "REASONS",
    "Coord",
    "Derivation",
    "Exclusion",
    "FieldType",
    "LayoutSpec",
    "LayoutWarning",
    "Lookup",
    "NameTest",
    "Node",
    "Table",
    "arrange",
    "day",
    "exclusion_counts",
    "match_fields",
    "natural_key",
    "parse_type",
    "table_paths",
]
