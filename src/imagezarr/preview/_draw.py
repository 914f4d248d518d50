"""Drawing a contact sheet with Pillow: label rows and columns, cells, marked holes, caption.

The geometry is computed first (:class:`Geometry`) and kept with the sheet, so tests and
callers can crop any cell or label without reading text back from pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import display

if TYPE_CHECKING:
    from PIL import Image, ImageFont

__all__ = ["BACKGROUND", "FAILED", "HOLE", "Geometry", "draw_sheet", "stretch"]

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), as Pillow crops
BACKGROUND = (255, 255, 255)
HOLE = (225, 225, 225)  # an empty cell: light grey, crossed in darker grey
HOLE_MARK = (150, 150, 150)
FAILED = (250, 222, 222)  # a file that could not be read (on_error="fill"): crossed in red
FAILED_MARK = (200, 0, 0)
INK = (0, 0, 0)
MARGIN, GAP, PAD = 10, 4, 6
FONT_SIZE = 14


# fonts with glyphs beyond ASCII (folder names such as "Versuch Größe"), looked up by
# Pillow in the system's font folders: Linux, Windows, macOS. Pillow's bundled font draws
# boxes for every letter outside ASCII, so it is only the last resort.
WIDE_FONTS = (
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "NotoSans-Regular.ttf",
    "arial.ttf",
    "segoeui.ttf",
    "Arial.ttf",
    "Arial Unicode.ttf",
    "Helvetica.ttc",
)


@functools.cache
def font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A system font that covers accented letters (:data:`WIDE_FONTS`) at ``size`` px, else
    Pillow's bundled font (FreeType), else its bitmap font without FreeType."""
    from PIL import ImageFont

    for name in WIDE_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:  # not installed here (or no FreeType)
            continue
    return ImageFont.load_default(size=size)


def stretch(
    thumbs: Sequence[np.ndarray], percentiles: tuple[float, float]
) -> tuple[list[np.ndarray], tuple[float, float] | None]:
    """Thumbnails as uint8 for display, and the input values shown as 0 and 255: the
    display rule (:func:`imagezarr.display.stretch`), one scale for the whole sheet so
    that brightness compares across cells.

    >>> a = np.array([[0.0, 1000.0], [2000.0, np.nan]], dtype=np.float32)
    >>> shown, limits = stretch([a], (0, 100))
    >>> shown[0].tolist(), limits
    ([[0, 128], [255, 0]], (0.0, 2000.0))
    """
    return display.stretch(thumbs, percentiles)


@dataclass(frozen=True)
class Geometry:
    """Where everything is on the sheet, in pixels; boxes are ``(left, top, right, bottom)``.

    ``cells[r, c]`` is the box of the thumbnail of row ``r``, column ``c`` (``-1`` where a
    wrapped layout has no cell); ``row_labels``/``col_labels`` are the boxes of their texts,
    ``cell_labels`` (wrapped layouts) one per cell in reading order.
    """

    size: tuple[int, int]
    cells: np.ndarray
    row_labels: tuple[Box, ...]
    col_labels: tuple[Box, ...]
    cell_labels: tuple[Box, ...]
    caption: Box
    col_labels_rotated: bool


def _text_size(f: Any, text: str) -> tuple[int, int]:
    _, _, right, bottom = f.getbbox(text or " ")
    return int(right), int(bottom)


def fit(f: Any, text: str, width: int) -> str:
    """``text`` shortened in the middle (``A1-doi-...PSII0-1``) to at most ``width`` px, so
    that both ends, usually the telling parts of a name, stay readable."""
    if f.getlength(text) <= width:
        return text
    keep = len(text)
    while keep > 1:
        keep -= 1
        head, tail = text[: (keep + 1) // 2], text[len(text) - keep // 2 :]
        short = f"{head}...{tail}"
        if f.getlength(short) <= width:
            return short
    return text[:1]


def _wrap(f: Any, text: str, width: int) -> list[str]:
    """``text`` broken at spaces into lines at most ``width`` px wide."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and f.getlength(trial) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def draw_sheet(
    grid: np.ndarray,
    thumbs: Mapping[tuple[int, int], np.ndarray],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cell_labels: Sequence[str] = (),
    thumb_size: tuple[int, int],
    zoom: int,
    title: str,
    caption: str,
) -> tuple[Image.Image, Geometry]:
    """Draw the sheet: ``grid[r, c]`` is ``"image"``, ``"hole"``, ``"failed"`` or ``""``.

    ``thumbs`` holds the uint8 thumbnails of the ``"image"`` cells; each is drawn ``zoom``
    times enlarged (pixel copies) into a ``thumb_size`` x ``zoom`` box. ``cell_labels``
    (one per cell, reading order) replace row and column labels for wrapped layouts.
    """
    from PIL import Image, ImageDraw

    f = font()
    n_rows, n_cols = grid.shape
    cell_h, cell_w = thumb_size[0] * zoom, thumb_size[1] * zoom
    line_h = _text_size(f, "Ag")[1] + 2
    row_w = max((_text_size(f, t)[0] for t in row_labels), default=0)
    row_w = row_w + PAD if row_w else 0
    col_w = max((_text_size(f, t)[0] for t in col_labels), default=0)
    rotated = col_w > cell_w  # long labels (timestamps) over narrow cells: read them upwards
    col_h = (col_w if rotated else line_h) + PAD if col_w else 0
    label_h = line_h if cell_labels else 0
    title_h = line_h + PAD if title else 0
    left = MARGIN + row_w
    top = MARGIN + title_h + col_h
    step_x, step_y = cell_w + GAP, cell_h + label_h + GAP
    width = max(left + n_cols * step_x - GAP + MARGIN, MARGIN * 2 + _text_size(f, title)[0])
    lines = _wrap(f, caption, width - 2 * MARGIN)
    caption_top = top + n_rows * step_y - GAP + PAD
    height = caption_top + len(lines) * line_h + MARGIN
    cells = np.full((n_rows, n_cols, 4), -1, dtype=np.int64)
    for r, c in zip(*np.nonzero(grid), strict=True):
        x, y = left + c * step_x, top + r * step_y
        cells[r, c] = (x, y, x + cell_w, y + cell_h)
    # thumbnails go in with numpy (one copy each), text and marks with Pillow afterwards
    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    for (r, c), pixels in thumbs.items():
        if zoom > 1:
            pixels = np.repeat(np.repeat(pixels, zoom, axis=0), zoom, axis=1)
        x, y = cells[r, c, :2]
        canvas[y : y + cell_h, x : x + cell_w] = pixels if pixels.ndim == 3 else pixels[..., None]
    image = Image.fromarray(canvas)
    pen = ImageDraw.Draw(image)
    if title:
        pen.text((MARGIN, MARGIN), title, font=f, fill=INK)
    row_boxes, col_boxes, cell_label_boxes = [], [], []
    for r, text in enumerate(row_labels[:n_rows] if row_w else ()):
        w, h = _text_size(f, text)
        y = top + r * step_y + (cell_h - h) // 2
        pen.text((left - PAD - w, y), text, font=f, fill=INK)
        row_boxes.append((left - PAD - w, y, left - PAD, y + h))
    for c, text in enumerate(col_labels[:n_cols] if col_w else ()):
        w, h = _text_size(f, text)
        x0 = left + c * step_x
        if rotated:
            strip = Image.new("RGB", (w, h), BACKGROUND)
            ImageDraw.Draw(strip).text((0, 0), text, font=f, fill=INK)
            x, y = x0 + (cell_w - h) // 2, top - PAD - w
            image.paste(strip.rotate(90, expand=True), (x, y))
            col_boxes.append((x, y, x + h, y + w))
        else:
            x, y = x0 + (cell_w - w) // 2, top - PAD - h
            pen.text((x, y), text, font=f, fill=INK)
            col_boxes.append((x, y, x + w, y + h))
    for k, (r, c) in enumerate(zip(*np.nonzero(grid), strict=True)):
        x0, y0, x1, y1 = (int(v) for v in cells[r, c])
        if grid[r, c] != "image":
            _mark(pen, (x0, y0, x1, y1), failed=grid[r, c] == "failed")
        if cell_labels:
            text = fit(f, cell_labels[k], cell_w)
            w, h = _text_size(f, text)
            tx = x0 + max(0, (cell_w - w) // 2)
            pen.text((tx, y1 + 1), text, font=f, fill=INK)
            cell_label_boxes.append((tx, y1 + 1, tx + w, y1 + 1 + h))
    for i, line in enumerate(lines):
        pen.text((MARGIN, caption_top + i * line_h), line, font=f, fill=INK)
    geometry = Geometry(
        size=(width, height),
        cells=cells,
        row_labels=tuple(row_boxes),
        col_labels=tuple(col_boxes),
        cell_labels=tuple(cell_label_boxes),
        caption=(MARGIN, caption_top, width - MARGIN, caption_top + len(lines) * line_h),
        col_labels_rotated=rotated,
    )
    return image, geometry


def _mark(pen: Any, box: Box, *, failed: bool) -> None:
    """A cell without pixels: filled and crossed, grey for a hole, red for a failed file."""
    x0, y0, x1, y1 = box
    pen.rectangle((x0, y0, x1 - 1, y1 - 1), fill=FAILED if failed else HOLE)
    mark = FAILED_MARK if failed else HOLE_MARK
    width = max(1, min(x1 - x0, y1 - y0) // 40)
    pen.line((x0, y0, x1 - 1, y1 - 1), fill=mark, width=width)
    pen.line((x0, y1 - 1, x1 - 1, y0), fill=mark, width=width)
