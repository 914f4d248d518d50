"""Running the application: in the foreground until Ctrl-C, or in a background thread.

aiohttp runs on its own event loop (the main thread's for :func:`serve`, a private thread's
for :func:`start`); zarr's synchronous API keeps using its own loop thread, and decoding runs
in the application's thread pool, so none of them blocks another.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import threading
from collections.abc import Callable
from typing import Any, Unpack

from aiohttp import web

from ..access import Access, AccessKeywords
from ..hierarchy import image_array_path
from ..store import ImageZarrStore
from ._content import Codec, Content
from ._http import ACCESS_LOG, CONTENT, AccessLogger, build_app, protected

__all__ = ["Server", "make_app", "serve", "start"]

_SHUTDOWN = 2.0  # seconds in-flight requests get when the server stops
# A client must send a request's headers within IDLE_TIMEOUT of connecting or of its last
# response, or be disconnected: aiohttp's keep-alive timer does exactly this (it is armed at
# connect and not pushed back by bytes that do not complete a request), so a slow client
# dribbling headers byte by byte is dropped like an idle one. aiohttp's default is an hour.
IDLE_TIMEOUT = 20.0  # as Apache's RequestReadTimeout header=20
MAX_CONNECTIONS = 512  # beyond this, new connections are closed at once
_LIMITS = web.AppKey("limits", tuple)


def make_app(
    manifest: Any,
    *,
    codec: Codec = "original",
    token: str | None = None,
    access: Access | None = None,
    workers: int | None = None,
    ome: bool = True,
    consolidated: bool | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    **options: Unpack[AccessKeywords],
) -> web.Application:
    """An aiohttp application serving a manifest as a read-only Zarr v3 hierarchy.

    Parameters
    ----------
    manifest
        A :class:`~imagezarr.manifest.Manifest`, or the path or URL of a saved one.
    codec
        ``"original"``: image chunks are the files' bytes, declared with imagecodecs' codecs
        (readers need ``imagecodecs-zarr``). ``"raw"``, ``"zstd"``, ``"gzip"``: decoded
        pixels, declared with zarr's standard ``bytes`` (+ ``zstd``/``gzip``) codecs, which
        every Zarr v3 reader has (zarr-python, zarrita.js, neuroglancer).
    token
        When given, every request must carry ``Authorization: Bearer TOKEN`` or
        ``?token=TOKEN`` (CORS preflights excepted); others get 401.
    access, **options
        As for :func:`imagezarr.open_store` (:class:`~imagezarr.access.Access`). ``check``
        is the freshness check of every image read (``mtime``, ``size``, ``checksum``,
        ``none``): a file that fails it is an HTTP 409 naming it, never stale bytes.
        ``on_error`` cannot be ``"fill"``: a server never passes a bad file off as zeros.
    workers
        Threads that read and decode (default: one per core for decoded codecs, the root's
        I/O concurrency for ``original``).
    ome
        Add OME-Zarr 0.5 metadata to the groups whose layout fits.
    consolidated
        Consolidated metadata in the root ``zarr.json`` (default: for decoded codecs only,
        see :class:`~imagezarr.serve._content.Content`).
    idle_timeout
        Seconds a connection may take to send a request's headers, counted from when it
        opened or got its last response; slower or idle connections are closed.
    max_connections
        Open connections at most; more are closed as they arrive.

    Examples
    --------
    >>> from imagezarr.testing import small_manifest
    >>> app = make_app(small_manifest(group_by="barcode", dims=("frame",)), codec="raw")
    >>> app[CONTENT].ome
    ['A1', 'A2']
    """
    store = ImageZarrStore(
        manifest,
        access=access,
        pipeline=None,  # zarr's pipelines are not used: leave the user's config alone
        **options,
    )
    if not (idle_timeout > 0 and max_connections > 0):
        msg = "idle_timeout and max_connections must be positive"
        raise ValueError(msg)
    content = Content(store, codec, ome=ome, consolidated=consolidated)
    app = build_app(content, token=token, workers=workers)
    app[_LIMITS] = (float(idle_timeout), int(max_connections))
    return app


class _Runner(web.AppRunner):
    """aiohttp's runner with a cap on open connections."""

    def __init__(self, app: web.Application, most: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._most = most

    async def setup(self) -> None:
        await super().setup()
        server = self.server
        assert server is not None
        admit = server.connection_made

        # aiohttp has no connection limit of its own; its Server is told of each connection
        # (RequestHandler.connection_made), which is where one over the cap is closed
        def connection_made(handler: Any, transport: Any) -> None:
            admit(handler, transport)
            if len(server.connections) > self._most:
                transport.close()

        server.connection_made = connection_made  # type: ignore[method-assign]


def _runner(app: web.Application) -> web.AppRunner:
    idle, most = app.get(_LIMITS, (IDLE_TIMEOUT, MAX_CONNECTIONS))
    # signals stay with the caller (asyncio.run turns Ctrl-C into a cancellation)
    return _Runner(
        app,
        most,
        access_log_class=AccessLogger,
        access_log=ACCESS_LOG,
        handle_signals=False,
        shutdown_timeout=_SHUTDOWN,
        keepalive_timeout=idle,
    )


def _url(host: str, port: int) -> str:
    """The URL to print for a server listening on ``host``: wildcards are reached locally."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        v6 = False
    return f"http://[{host}]:{port}/" if v6 else f"http://{host}:{port}/"


class Server:
    """A server running in a background thread; stop it with :meth:`stop` or ``with``.

    :func:`start` makes one for a manifest; ``Server(app, host, port, timeout)`` runs any
    aiohttp application the same way.

    Attributes
    ----------
    url
        The root URL of the hierarchy, e.g. ``http://127.0.0.1:54321/``.
    app
        The served application.
    """

    def __init__(self, app: web.Application, host: str, port: int, timeout: float) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._runner = _runner(app)
        self._ready = threading.Event()
        self._failed: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(host, port), name="imagezarr-serve", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            msg = f"the server did not start within {timeout} s"
            raise TimeoutError(msg)
        if self._failed:
            self._thread.join(timeout)
            raise self._failed[0]
        self.url = _url(host, self._runner.addresses[0][1])

    def _run(self, host: str, port: int) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, host, port)
            loop.run_until_complete(site.start())
        except BaseException as e:  # reported to the starting thread, which raises it
            self._failed.append(e)
            self._ready.set()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait (up to ``timeout`` seconds) for the thread to end."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Server({self.url!r})"


def start(
    manifest: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 30.0,
    **options: Any,
) -> Server:
    """Serve ``manifest`` from a background thread (notebooks, tests); returns once listening.

    ``port=0`` picks a free port (see :attr:`Server.url`); ``options`` go to
    :func:`make_app`.

    Examples
    --------
    >>> import json, urllib.request
    >>> from imagezarr.testing import small_manifest
    >>> with start(small_manifest(), codec="zstd") as server:
    ...     doc = json.load(urllib.request.urlopen(server.url + "image/zarr.json"))
    >>> [c["name"] for c in doc["codecs"]]
    ['bytes', 'zstd']
    """
    return Server(make_app(manifest, **options), host, port, timeout)


def serve(
    manifest: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    echo: Callable[[str], object] = print,
    on_start: Callable[[str], object] | None = None,
    **options: Any,
) -> None:
    """Serve ``manifest`` until interrupted (Ctrl-C), then return.

    ``echo`` gets the URL and how to open it; ``on_start`` (if given) the URL once the
    server listens (``imagezarr view`` opens the viewer there); ``options`` go to
    :func:`make_app`. Binds ``127.0.0.1`` (this machine only) unless ``host`` says otherwise.
    """
    app = make_app(manifest, **options)
    try:
        asyncio.run(_forever(app, host, port, echo, on_start))
    except KeyboardInterrupt:  # asyncio.run cancelled the server and cleaned up first
        return


async def _forever(
    app: web.Application,
    host: str,
    port: int,
    echo: Callable[[str], object],
    on_start: Callable[[str], object] | None = None,
) -> None:
    runner = _runner(app)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as e:
            reason = os.strerror(e.errno).lower() if e.errno else str(e)
            error = OSError(
                f"cannot listen on {host} port {port}: {reason}; choose another port "
                "(with --port 0 a free one is picked)"
            )
            error.errno = e.errno
            raise error from e
        # the caller's line first: `view` prints the viewer's page before the server's root
        # (a directory listing nobody wants to open first)
        if on_start is not None:
            on_start(_url(host, runner.addresses[0][1]))
        for line in describe(app, _url(host, runner.addresses[0][1]), host):
            echo(line)
        await asyncio.Event().wait()  # until Ctrl-C cancels this task
    finally:
        await runner.cleanup()


def describe(app: web.Application, url: str, host: str) -> list[str]:
    """What :func:`serve` prints on start: the URL and how to open it."""
    content = app[CONTENT]
    m = content.store.manifest
    groups = [n.path for n in m.nodes]
    lines = [
        f"imagezarr: serving {len(m.files)} files, {len(groups)} image array(s), codec "
        f"{content.codec}, read-only, at",
        f"  {url}",
    ]
    first = image_array_path(m.nodes[0]) if m.nodes else "image"
    lines.append(f'  zarr:   zarr.open_group("{url}", mode="r")["{first}"]')
    group = f', group="{groups[0]}"' if groups and groups[0] else ""
    lines.append(f'  xarray: xarray.open_zarr("{url}"{group})')
    if content.codec == "original":
        lines.append(
            "  chunks are the original files: readers need imagecodecs-zarr; for viewers "
            "(neuroglancer, zarrita.js) serve with --codec raw or zstd"
        )
    if content.ome:
        lines.append(f"  OME-Zarr 0.5 metadata on {len(content.ome)} group(s)")
    if protected(app):
        lines.append(
            "  token required: header 'Authorization: Bearer TOKEN' (zarr/xarray: "
            'storage_options={"headers": {"Authorization": "Bearer TOKEN"}}) or ?token=TOKEN'
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        warning = "" if protected(app) else "; without --token anyone who reaches it can read"
        lines.append(f"  listening on {host}: other machines can connect{warning}")
    lines.append(f"  viewer: {url}_view/")
    lines.append("Ctrl-C stops.")
    return lines
