"""Serve: the hierarchy as a read-only Zarr v3 hierarchy over HTTP.

``imagezarr serve MANIFEST`` (or :func:`serve`, :func:`start`, :func:`make_app`) answers
``GET``/``HEAD`` for every key of the hierarchy the store describes: metadata documents and
coordinate chunks as :func:`imagezarr.hierarchy.build_metadata` writes them (plus OME-Zarr 0.5
metadata on groups whose layout fits), and image chunks either as the original files
(``codec="original"``) or decoded (``raw``, ``zstd``, ``gzip``) for readers without
imagecodecs. Every image read passes the store's freshness check: a changed or missing file
is an HTTP error naming it, never stale bytes. Built on aiohttp; see ``docs/serve.md``.
"""

from __future__ import annotations

from ._content import CODECS, Codec, Content
from ._run import Server, make_app, serve, start

__all__ = ["CODECS", "Codec", "Content", "Server", "make_app", "serve", "start"]
