"""Stage 3, layout: file names → typed fields → groups, arrays, dims and coordinates.

Pure: takes values, returns values, touches no file. Three modules, each importing only
the ones before it:

- :mod:`.spec`: :class:`LayoutSpec`, the regex, field types, dims and grouping, with the
  :class:`Table`\\ s and :class:`Lookup`\\ s it joins; it validates every document it reads.
- :mod:`.match`: :func:`match_fields` parses every relative path into typed fields, joins
  tables, filters, derives fields and joins lookups.
- :mod:`.arrange`: :func:`arrange` turns matched files and their probed ``ImageInfo`` into
  :class:`Node`\\ s, one per group, each holding one image array with labeled outer dims.
"""

from __future__ import annotations

from .arrange import Coord, Node, arrange
from .match import day, match_fields, natural_key, table_paths
from .spec import Derivation, FieldType, LayoutSpec, LayoutWarning, Lookup, Table, parse_type

__all__ = [
    "Coord",
    "Derivation",
    "FieldType",
    "LayoutSpec",
    "LayoutWarning",
    "Lookup",
    "Node",
    "Table",
    "arrange",
    "day",
    "match_fields",
    "natural_key",
    "parse_type",
    "table_paths",
]
