"""The viewer's routes under ``/_view/``: the page, a JSON description per group, PNG images.

``imagezarr view`` (and every ``imagezarr serve``) answers, besides the hierarchy's keys:

``/_view/``
    The page (``imagezarr/view/index.html``) and its files: plain JS and CSS shipped in the
    package, nothing fetched from elsewhere.
``/_view/groups``
    JSON: every group's path, dims and shape.
``/_view/group/<group>``
    JSON: one group's dims, shape, the labels of every dim (formatted as contact sheets write
    them), its other coordinates, and per slot whether a file is there and its path.
``/_view/thumb/<group>/<i>/<j>...?size=256``
    The image of one slot as a PNG whose longer side is at most ``size`` (block means), with
    16-bit and float images stretched to 8 bits (``?min=&max=``, else the 0.5 and 99.5
    percentiles). ``/_view/image/...`` is the same at full resolution.

Paths are parsed as the hierarchy's keys are (no ``..``, no encoded separators), the token
applies as everywhere except to the page's own files (they hold no data, and the page keeps
the token in the URL's fragment, which browsers never send), and every read passes the
store's freshness check. A group named
``_view`` at the top of the hierarchy is shadowed by these routes.
"""

from __future__ import annotations

import asyncio
import json
import math
from importlib import resources
from typing import Any

import imagecodecs
import numpy as np
from aiohttp import web

from .. import display
from ..hierarchy import image_array_path
from ..layout import Node
from ..preview._select import format_label, labels_of
from ._content import Content

__all__ = ["PREFIX", "add_viewer", "answer", "group_doc", "is_static", "picture", "render"]

PREFIX = "_view"
_STATIC = {
    "": ("index.html", "text/html"),
    "index.html": ("index.html", "text/html"),
    "app.js": ("app.js", "text/javascript"),
    "view.css": ("view.css", "text/css"),
}
_MAX_SIZE = 4096


def add_viewer(app: web.Application, handle: Any) -> None:
    """Route ``/_view`` and everything under it to ``handle`` (the token and method checks
    of the hierarchy's handler, then :func:`answer`)."""
    app.router.add_route("*", f"/{PREFIX}", _redirect)
    app.router.add_route("*", f"/{PREFIX}/{{tail:.*}}", handle)


def is_static(parts: list[str]) -> bool:
    """Whether ``/_view/<parts>`` is one of the page's own files (served without a token)."""
    return len(parts) <= 1 and (parts[0] if parts else "") in _STATIC


async def _redirect(request: web.Request) -> web.StreamResponse:
    query = f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else ""
    msg = f"/{PREFIX}/{query}"
    raise web.HTTPFound(msg)


def _static(name: str) -> web.Response:
    file, kind = _STATIC[name]
    body = resources.files("imagezarr.view").joinpath(file).read_bytes()
    return web.Response(
        body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


def _json(doc: Any) -> web.Response:
    return web.Response(
        text=json.dumps(doc, separators=(",", ":")),
        content_type="application/json",
        headers={"Cache-Control": "no-cache"},
    )


def _nodes(content: Content) -> dict[str, Node]:
    return {n.path: n for n in content.store.manifest.nodes}


def _slot(content: Content, parts: list[str]) -> tuple[Node, tuple[int, ...]]:
    """The group and outer index named by ``<group parts>/<i>/<j>...``."""
    nodes = _nodes(content)
    for k in sorted({len(n.dims) for n in nodes.values()}):
        if len(parts) < k:
            continue
        node = nodes.get("/".join(parts[: len(parts) - k]))
        if node is None or len(node.dims) != k:
            continue
        try:
            index = tuple(int(p) for p in parts[len(parts) - k :])
        except ValueError:
            continue
        if all(0 <= i < n for i, n in zip(index, node.shape, strict=True)):
            return node, index
        msg = f"{'/'.join(parts)}: outside the shape {node.shape} of {node.path!r}"
        raise LookupError(msg)
    msg = f"{'/'.join(parts) or '/'}: no group and index of the hierarchy"
    raise LookupError(msg)


def group_doc(content: Content, node: Node) -> dict[str, Any]:
    """What the page knows of a group: dims, labels, coordinates, holes and file paths."""
    files = content.store.manifest.files
    flat = node.file_index.ravel()
    labels = {d: [format_label(v) for v in labels_of(node, d)] for d in node.dims}
    coords = {
        name: {"dims": list(c.dims), "values": [format_label(v) for v in c.values]}
        for name, c in node.coords.items()
        if not (c.dims == (name,) and name in node.dims)
    }
    return {
        "path": node.path,
        "array": image_array_path(node),
        "dims": list(node.dims),
        "shape": list(node.shape),
        "image": {
            "shape": list(node.image.shape),
            "dtype": node.image.dtype,
            "dims": list(node.image.dims),
            "format": node.image.format,
        },
        "labels": labels,
        "coords": coords,
        "present": [int(i >= 0) for i in flat],
        "paths": [files.paths[int(i)] if i >= 0 else None for i in flat],
        "attrs": dict(node.attrs),
    }


def shrink(pixels: np.ndarray, size: int) -> np.ndarray:
    """The display reduction (:func:`imagezarr.display.reduce`) that brings the longer side
    to at most ``size``.

    >>> shrink(np.arange(16, dtype=np.uint16).reshape(4, 4), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    return display.reduce(pixels, display.factor_for(pixels.shape, size))


def to_uint8(
    pixels: np.ndarray, dtype: str, lo: float | None = None, hi: float | None = None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """8-bit pixels for a PNG, and the values shown as 0 and 255 (None for bool images).

    uint8 images are shown as stored unless limits are given; others are stretched between
    ``lo`` and ``hi``, by default the display percentiles (as the contact sheet and napari).
    """
    if dtype == "bool":
        return (pixels > 0).astype(np.uint8) * 255, None
    if dtype == "uint8" and lo is None and hi is None:
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8), (0.0, 255.0)
    shown, limits = display.stretch([pixels], display.PERCENTILES, lo, hi)
    return shown[0], limits


def _chunk_key(content: Content, node: Node, index: tuple[int, ...]) -> str:
    return content.store.chunks.key(node, index)


def render(
    content: Content,
    node: Node,
    raw: Any,
    size: int,
    lo: float | None = None,
    hi: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The PNG of one file's bytes ``raw`` and headers with its value range. CPU-bound."""
    image = content.images[image_array_path(node)]
    made = _reduced(image.decoder, node, raw, size)
    if made is None:
        decoded = image.decoder._decode_sync(raw, image.spec)  # type: ignore[attr-defined]
        whole = np.asarray(decoded.as_numpy_array()).reshape(tuple(node.image.shape))
        pixels = display.plane(whole, tuple(node.image.dims))
        small = shrink(pixels, size)
    else:
        pixels, small = made
    shown, limits = to_uint8(small, node.image.dtype, lo, hi)
    finite = pixels[np.isfinite(pixels)] if pixels.dtype.kind == "f" else pixels
    headers = {
        "X-Imagezarr-Data-Min": f"{float(finite.min()) if finite.size else 0.0:g}",
        "X-Imagezarr-Data-Max": f"{float(finite.max()) if finite.size else 0.0:g}",
        "X-Imagezarr-Dtype": node.image.dtype,
    }
    if limits is not None:
        headers["X-Imagezarr-Min"] = f"{limits[0]:g}"
        headers["X-Imagezarr-Max"] = f"{limits[1]:g}"
    return imagecodecs.png_encode(np.ascontiguousarray(shown)), headers


def _reduced(decoder: Any, node: Node, raw: Any, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A thumbnail decoded at reduced size where the format allows: the reduced image and
    the thumbnail (the size a full decode would give); None otherwise.

    The data range sent with it is then that of the reduced image, as on any thumbnail; a
    full-size view (``size`` 0) always decodes everything.
    """
    shape, dims = tuple(node.image.shape), tuple(node.image.dims)
    factor = display.factor_for(shape, size)
    if factor < 2 or dims[:2] != ("y", "x"):
        return None
    try:
        made = decoder.reduced(raw.as_numpy_array(), factor)
    except Exception:  # the full decode then names what is wrong with the file
        return None
    if made is None:
        return None
    pixels, scale = made
    expected = tuple(-(-s // scale) for s in shape[:2]) + shape[2:]
    if pixels.shape != expected or pixels.dtype != np.dtype(node.image.dtype):
        return None  # not what a reduced decode of the declared image gives: check it whole
    pixels = display.plane(pixels, dims)
    return pixels, display.reduce(pixels, factor // scale)


def picture(
    content: Content,
    node: Node,
    index: tuple[int, ...],
    size: int,
    lo: float | None = None,
    hi: float | None = None,
) -> tuple[bytes, dict[str, str]] | None:
    """The PNG of one slot (read with the freshness check); None for a hole. Blocking."""
    raw = content.chunk_sync(_chunk_key(content, node, index), encode=False)
    return None if raw is None else render(content, node, raw, size, lo, hi)


def _limit(query: Any, name: str) -> float | None:
    text = query.get(name)
    if text in (None, ""):
        return None
    value = float(text)
    if not math.isfinite(value):
        msg = f"{name} must be a finite number"
        raise ValueError(msg)
    return value


async def answer(
    request: web.Request, content: Content, pool: Any, parts: list[str]
) -> web.StreamResponse:
    """The response to ``/_view/<parts>`` (already authorized and parsed)."""
    what, rest = (parts[0], parts[1:]) if parts else ("", [])
    if what in _STATIC and not rest:
        return _static(what)
    if what == "groups" and not rest:
        nodes = content.store.manifest.nodes
        return _json(
            [{"path": n.path, "dims": list(n.dims), "shape": list(n.shape)} for n in nodes]
        )
    if what == "group":
        node = _nodes(content).get("/".join(rest))
        if node is None:
            msg = f"{'/'.join(rest) or '/'}: not a group of the hierarchy"
            raise LookupError(msg)
        return _json(group_doc(content, node))
    if what in ("thumb", "image"):
        node, index = _slot(content, rest)
        try:
            size = int(request.query.get("size", "256")) if what == "thumb" else 0
            lo, hi = _limit(request.query, "min"), _limit(request.query, "max")
        except ValueError as e:
            msg = f"bad query: {e}"
            raise ValueError(msg) from None
        size = min(max(size, 0), _MAX_SIZE)
        loop = asyncio.get_running_loop()
        made: tuple[bytes, dict[str, str]] | None
        if content.store.opened.source.sync_reads:  # local files: read and decode in one hop
            made = await loop.run_in_executor(pool, picture, content, node, index, size, lo, hi)
        else:  # object stores: read on the loop, decode in the pool
            raw = await content.read_async(_chunk_key(content, node, index))
            made = None
            if raw is not None:
                job = (content, node, raw, size, lo, hi)
                made = await loop.run_in_executor(pool, render, *job)
        if made is None:
            msg = f"{node.path}/{'/'.join(map(str, index))}: a hole (no file)"
            raise LookupError(msg)
        body, headers = made
        headers["Cache-Control"] = "no-cache"
        return web.Response(body=body, content_type="image/png", headers=headers)
    msg = f"/{PREFIX}/{'/'.join(parts)}: no such page"
    raise LookupError(msg)
