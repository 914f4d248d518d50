"""Preview: see the images of a manifest as a labelled contact sheet.

:func:`contact_sheet` lays out one group's images in a grid, one dim down the rows and one
across the columns, labelled with their coordinate values; every other dim is fixed to one
label. Thumbnails are decoded at reduced resolution where the format allows it and in
parallel threads (imagecodecs and Pillow release the GIL). 16-bit and float images are
contrast-stretched between percentiles stated in the caption; 8-bit images are shown as
stored; RGB stays RGB. Holes are drawn as grey crossed cells. A file that is missing, changed
or undecodable raises naming it, or with ``on_error="fill"`` becomes a red crossed cell and a
:class:`~imagezarr.errors.FilledChunkWarning` naming it.

Rendering needs Pillow (a core dependency: text needs a font rasteriser). The package top
re-exports :func:`preview` as ``imagezarr.preview``, which hides this module behind the
function there: import the rest with ``from imagezarr.preview import contact_sheet``.

>>> import imagezarr.testing
>>> m = imagezarr.testing.small_manifest()
>>> sheet = contact_sheet(m, rows="barcode", cols="frame")
>>> sheet.row_labels, sheet.col_labels, sheet.cells.shape
(('A1', 'A2'), ('1', '2'), (2, 2, 4))
"""

from __future__ import annotations

from ._draw import stretch
from ._html import summary_html
from ._select import format_label, labels_of
from ._sheet import MAX_CELLS, PERCENTILES, Sheet, contact_sheet, preview
from ._thumbs import box_reduce

__all__ = [
    "MAX_CELLS",
    "PERCENTILES",
    "Sheet",
    "box_reduce",
    "contact_sheet",
    "format_label",
    "labels_of",
    "preview",
    "stretch",
    "summary_html",
]
