"""The HTTP side: one aiohttp handler for every key, CORS, validators, ranges and the token.

Read-only: ``GET``, ``HEAD`` and ``OPTIONS`` (CORS preflight); anything else is 405. A request
path is split at ``/`` and each part percent-decoded on its own, and parts that are empty,
``.``, ``..`` or hold ``/``, ``\\`` or NUL after decoding are refused (400) before any lookup:
keys are looked up in the hierarchy, never joined onto a file system path, so nothing
outside the hierarchy can be reached.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import html
import logging
import os
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from urllib.parse import quote, unquote

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from zarr.core.buffer import Buffer

from ..errors import ChunkReadError, SourceChangedError
from ._content import OCTETS, Content, Entity

__all__ = ["ACCESS_LOG", "CONTENT", "AccessLogger", "build_app", "protected"]

ACCESS_LOG = logging.getLogger("imagezarr.serve")  # one line per request, at INFO (-v)

CONTENT = web.AppKey("content", Content)
_POOL = web.AppKey("pool", ThreadPoolExecutor)
_TOKEN = web.AppKey("token", str)

_EXPOSE = "Content-Range, Content-Length, Content-Type, ETag, Last-Modified, Accept-Ranges"
_ALLOW_HEADERS = "Range, Authorization, If-None-Match, If-Modified-Since, If-Range, Content-Type"
_METHODS = "GET, HEAD, OPTIONS"
# ASCII digits only (\d also takes "٠-٩"), at most 19 of them: a byte position past 2**63 is
# no file's, and int() of a 4,300-digit string raises (Python's int-string limit)
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})", re.ASCII)
_UNSATISFIABLE = (-1, -1)
_BAD_IN_PART = ("/", "\\", "\x00")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def build_app(
    content: Content, *, token: str | None = None, workers: int | None = None
) -> web.Application:
    """The aiohttp application serving ``content``.

    Decoding runs in a pool of ``workers`` threads (default: one per core for decoded codecs,
    the root's I/O concurrency for ``original``), never on the event loop.
    """
    if token is not None and not token:
        msg = "token must not be empty (omit it to serve without one)"
        raise ValueError(msg)
    if workers is None:
        source = content.store.opened.source
        workers = source.workers if content.codec == "original" else (os.cpu_count() or 1)
    app = web.Application(middlewares=[_known_methods])
    app[CONTENT] = content
    app[_POOL] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagezarr-serve")
    if token is not None:
        app[_TOKEN] = token
    from ._viewer import add_viewer  # imports this module: import it once the app is built

    add_viewer(app, _handle_view)
    app.router.add_route("*", "/{tail:.*}", _handle)
    app.on_response_prepare.append(_cors)
    app.on_cleanup.append(_stop_pool)
    return app


def protected(app: web.Application) -> bool:
    """Whether ``app`` asks every request for a token."""
    return app.get(_TOKEN) is not None


async def _stop_pool(app: web.Application) -> None:
    app[_POOL].shutdown(wait=False, cancel_futures=True)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    # any origin: web viewers (neuroglancer, vizarr) are served from elsewhere; the token,
    # not the origin, is what restricts access
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = _EXPOSE


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error whose body is the message; the reason phrase carries it too, because HTTP
    clients (fsspec, hence zarr) put only status and reason into their exceptions."""
    line = " ".join(message.split()).encode("ascii", "backslashreplace").decode()[:400]
    reason = f"{HTTPStatus(status).phrase}: {line}"
    return web.Response(status=status, reason=reason, text=message + "\n", headers=headers)


# "resolves to '/etc/passwd', outside the root '/srv/data'": where a link points, and where
# the root is, are the server's business (/zarr.json hides the root on purpose)
_LOCATIONS = re.compile(r"(resolves to|points to|outside(?: the root)?|under) '[^']*'")


def _public(request: web.Request, error: Exception) -> str:
    """The error as a client may see it: file names relative to the root, no absolute path
    and no link target (the whole message goes to the server's log instead)."""
    message = str(error)
    ACCESS_LOG.warning("%s", message)
    store = request.app[CONTENT].store
    for top in {store.manifest.root, getattr(store.opened.source, "path", "")}:
        if top:
            message = message.replace(top.rstrip("/") + "/", "").replace(top, "<root>")
    return _LOCATIONS.sub(lambda m: f"{m[1]} a place not shown", message)


@web.middleware
async def _known_methods(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """405 for any other method, before routing: CONNECT's target (``host:port``) is no
    path, so no route matches it and it would be a 404."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return _error(405, "read-only: GET, HEAD and OPTIONS only", {"Allow": _METHODS})
    return await handler(request)


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else request.query.get("token")
    if given is None:
        return False
    try:  # a header byte that is no UTF-8 (aiohttp decodes headers as Latin-1 surrogates)
        guess = given.encode()
    except UnicodeEncodeError:
        return False  # no token of ours: 401, not a 500
    # compare_digest: no timing hint about how much of a guess was right
    return hmac.compare_digest(guess, token.encode())


def _guard(request: web.Request, *, token: bool = True) -> web.Response | None:
    """The answer to a preflight, a method other than GET/HEAD, or (if ``token``) a missing
    token; else None."""
    if request.method == "OPTIONS":
        return _preflight(request)
    if request.method not in ("GET", "HEAD"):
        return _error(405, "read-only: GET, HEAD and OPTIONS only", {"Allow": _METHODS})
    wanted = request.app.get(_TOKEN) if token else None
    if wanted is not None and not _authorized(request, wanted):
        message = "missing or wrong token: send 'Authorization: Bearer TOKEN' or add ?token=TOKEN"
        return _error(401, message, {"WWW-Authenticate": 'Bearer realm="imagezarr"'})
    return None


async def _handle_view(request: web.Request) -> web.StreamResponse:
    """``/_view/...``: the viewer's page and data (:mod:`imagezarr.serve._viewer`)."""
    from ._viewer import answer, is_static

    try:
        key, _ = _key(request.rel_url.raw_path)
    except _Refused as e:
        return _error(e.status, str(e))
    parts = key.split("/")[1:]  # without "_view"
    # the page's own files hold no data and come before the page can send the token (it
    # has it in the URL's fragment, which browsers never send): they need none
    refused = _guard(request, token=not is_static(parts))
    if refused is not None:
        return refused
    try:
        return await answer(request, request.app[CONTENT], request.app[_POOL], parts)
    except _Refused as e:
        return _error(e.status, str(e))
    except LookupError as e:
        return _error(404, str(e.args[0]) if e.args else str(e))
    except ValueError as e:
        return _error(400, str(e))
    except ChunkReadError as e:
        conflict = isinstance(e, SourceChangedError) or isinstance(e.__cause__, FileNotFoundError)
        return _error(409 if conflict else 500, _public(request, e))


async def _handle(request: web.Request) -> web.StreamResponse:
    refused = _guard(request)
    if refused is not None:
        return refused
    try:
        key, directory = _key(request.rel_url.raw_path)
        return await _get(request, key, directory)
    except _Refused as e:
        return _error(e.status, str(e))
    except ChunkReadError as e:
        # changed or missing: the folder no longer matches the manifest (409); else the
        # file cannot be read or decoded (500). Never 404, which zarr would read as zeros.
        conflict = isinstance(e, SourceChangedError) or isinstance(e.__cause__, FileNotFoundError)
        return _error(409 if conflict else 500, _public(request, e))


def _preflight(request: web.Request) -> web.Response:
    headers = {
        "Access-Control-Allow-Methods": _METHODS,
        "Access-Control-Allow-Headers": _ALLOW_HEADERS,
        "Access-Control-Max-Age": "86400",
        "Allow": _METHODS,
    }
    if request.headers.get("Access-Control-Request-Private-Network") == "true":
        # Chrome asks before a public page (a hosted viewer) may fetch from this machine
        headers["Access-Control-Allow-Private-Network"] = "true"
    return web.Response(status=204, headers=headers)


def _key(raw_path: str) -> tuple[str, bool]:
    """The hierarchy key of a raw request path, and whether it ended in ``/``.

    >>> _key("/A1/image/c/0/0/0"), _key("/A%201/zarr.json"), _key("/")
    (('A1/image/c/0/0/0', False), ('A 1/zarr.json', False), ('', True))
    >>> _key("/A1/%2e%2e/zarr.json")
    Traceback (most recent call last):
    ...
    imagezarr.serve._http._Refused: not a key of the hierarchy: '..' in the path
    """
    if not raw_path.startswith("/"):
        raise _Refused(400, "the path must start with /")
    path = raw_path[1:]
    directory = path.endswith("/") or not path
    path = path.removesuffix("/")
    if not path:
        return "", True
    parts = []
    for raw in path.split("/"):
        try:
            part = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise _Refused(400, "not a key of the hierarchy: the path is not UTF-8") from None
        if part in ("", ".", "..") or any(c in part for c in _BAD_IN_PART):
            shown = part if part in (".", "..") else "an empty or encoded separator"
            raise _Refused(400, f"not a key of the hierarchy: {shown!r} in the path")
        parts.append(part)
    return "/".join(parts), directory


async def _get(request: web.Request, key: str, directory: bool) -> web.StreamResponse:
    content = request.app[CONTENT]
    index = None if directory else content.chunk_file(key)
    if index is not None:
        if index < 0:
            return _error(404, f"{key}: a hole (no file): read it as the fill value")
        etag, modified = content.validators(index)
        # a conditional request still reads the file: "not modified" must be checked, not
        # assumed, or a changed file would keep its stale pixels in the client's cache
        unchanged = _matches(request.headers.get("If-None-Match"), etag)
        buf = await _chunk(request.app, key, encode=not unchanged)
        if buf is None:  # pragma: no cover - holes are answered above
            return _error(404, f"{key}: no such chunk")
        entity = Entity(_view(buf), etag, modified, OCTETS)
        return _not_modified(entity) if unchanged else _send(request, entity)
    entity = None
    if not directory:
        if content.deferred(key):  # e.g. the path chunk of a million files: encode off-loop
            loop = asyncio.get_running_loop()
            entity = await loop.run_in_executor(request.app[_POOL], content.document, key)
        else:
            entity = content.document(key)
    if entity is not None:
        if _matches(request.headers.get("If-None-Match"), entity.etag):
            return _not_modified(entity)
        return _send(request, entity)
    names = [name async for name in content.store.list_dir(key)]
    if not names:
        raise _Refused(404, f"{key or '/'}: not a key of the hierarchy")
    return _listing(request, key, names)


async def _chunk(app: web.Application, key: str, *, encode: bool) -> Buffer | None:
    content, pool = app[CONTENT], app[_POOL]
    loop = asyncio.get_running_loop()
    if content.store.opened.source.sync_reads:  # local files: read and decode in one hop
        job = functools.partial(content.chunk_sync, key, encode=encode)
        return await loop.run_in_executor(pool, job)
    raw = await content.read_async(key)  # object stores: many reads in flight on the loop
    if raw is None or not encode:
        return raw
    return await loop.run_in_executor(pool, content.encode, key, raw)


def _view(buf: Buffer) -> memoryview:
    return memoryview(buf.as_numpy_array()).cast("B")


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _validators(entity: Entity) -> dict[str, str]:
    # no-cache: caches may keep bytes but must ask again, and asking re-checks the file
    headers = {"ETag": entity.etag, "Cache-Control": "no-cache", "Accept-Ranges": "bytes"}
    if entity.last_modified is not None:
        headers["Last-Modified"] = entity.last_modified
    return headers


def _not_modified(entity: Entity) -> web.Response:
    return web.Response(status=304, headers=_validators(entity))


def _send(request: web.Request, entity: Entity) -> web.Response:
    headers = _validators(entity)
    headers["Content-Type"] = entity.content_type
    body = entity.body
    size = len(body)
    wanted = request.headers.get("Range")
    if wanted is not None and _if_range(request.headers.get("If-Range"), entity):
        span = _byte_range(wanted, size)
        if span == _UNSATISFIABLE:
            headers["Content-Range"] = f"bytes */{size}"
            del headers["Content-Type"]
            return _error(416, f"range {wanted!r} is outside the {size} bytes", headers)
        if span is not None:
            start, stop = span
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
            return web.Response(status=206, body=body[start:stop], headers=headers)
    return web.Response(status=200, body=body, headers=headers)


def _if_range(header: str | None, entity: Entity) -> bool:
    """Whether a Range applies: no If-Range, or it names the current version."""
    return header is None or header.strip() in (entity.etag, entity.last_modified)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a single byte range, :data:`_UNSATISFIABLE`, or None to ignore the
    header and send everything (malformed, or several ranges: RFC 9110 allows both).

    >>> _byte_range("bytes=0-9", 100), _byte_range("bytes=90-", 100), _byte_range("bytes=-5", 100)
    ((0, 10), (90, 100), (95, 100))
    >>> _byte_range("bytes=100-", 100), _byte_range("bytes=0-1,5-6", 100)
    ((-1, -1), None)
    >>> _byte_range("bytes=" + "9" * 5000 + "-", 100), _byte_range("bytes=٠-٩", 100)
    (None, None)
    """
    m = _RANGE.fullmatch(header.strip())
    if m is None or not (m[1] or m[2]):
        return None
    if not m[1]:  # the last n bytes
        n = int(m[2])
        return _UNSATISFIABLE if n == 0 or size == 0 else (max(0, size - n), size)
    start = int(m[1])
    if m[2] and int(m[2]) < start:
        return None
    if start >= size:
        return _UNSATISFIABLE
    return start, size if not m[2] else min(int(m[2]) + 1, size)


def _listing(request: web.Request, key: str, names: list[str]) -> web.Response:
    """An HTML index of ``key``'s children, as fsspec's HTTP listing expects: zarr-python
    lists a group's members through it when there is no consolidated metadata.

    Links are absolute paths, not percent-encoded (only HTML-escaped): fsspec keeps a link
    when its text starts with the listed URL as the caller wrote it, and zarr takes the rest
    as the child's name. Browsers encode such links themselves.
    """
    base = "/" + "".join(f"{p}/" for p in key.split("/") if p)
    query = ""
    if protected(request.app) and "token" in request.query:
        query = "?token=" + quote(request.query["token"], safe="")  # browsers follow links
    title = html.escape(f"/{key}")
    items = "".join(
        f'<li><a href="{html.escape(base + n + query)}">{html.escape(n)}</a></li>\n' for n in names
    )
    body = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body><h1>{title}</h1>\n<ul>\n{items}</ul></body></html>\n"
    )
    return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-cache"})


class AccessLogger(AbstractAccessLogger):
    """Access lines without the query string, so a ``?token=`` never reaches a log."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.1f ms",
            request.method,
            request.rel_url.raw_path,
            response.status,
            response.body_length,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
