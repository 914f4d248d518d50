"""``imagezarr view``: serve the hierarchy and open the viewer page in a web browser."""

from __future__ import annotations

import threading
import webbrowser
from urllib.parse import quote

import click

from ..access import Access
from ..manifest import open_manifest
from ._common import console, host_option, manifest_access


def viewer_url(url: str, token: str | None = None, group: str | None = None) -> str:
    """The viewer's page on the server at ``url``; the token (if any) in the fragment, which
    browsers never send, so it reaches the page but no access log.

    >>> viewer_url("http://127.0.0.1:8000/", "s3cret", "A 1")
    'http://127.0.0.1:8000/_view/?group=A%201#token=s3cret'
    """
    page = f"{url}_view/"
    if group is not None:
        page += f"?group={quote(group, safe='')}"
    if token:
        page += f"#token={quote(token, safe='')}"
    return page


@click.command()
@manifest_access()
@host_option
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--token",
    envvar="IMAGEZARR_TOKEN",
    help="Require a token on every request (the opened page carries it). Also read from "
    "$IMAGEZARR_TOKEN.",
)
@click.option("--group", help="The group to show first (default: the first one).")
@click.option("--no-browser", is_flag=True, help="Print the page's URL, open no browser.")
def view(
    manifest: str,
    access: Access,
    host: str,
    port: int,
    token: str | None,
    group: str | None,
    no_browser: bool,
) -> None:
    """Browse MANIFEST in a web page: thumbnails by two dims, full images with pan/zoom.

    Serves the hierarchy as ``imagezarr serve`` does (Zarr v3 at the printed URL) and opens
    its viewer page, until Ctrl-C.
    """
    from ..serve import serve as run_serve  # aiohttp only for this command

    opened = open_manifest(manifest, access)
    m = opened.manifest
    if group is not None and group not in {n.path for n in m.nodes}:
        msg = f"no group {group!r} in {manifest}"
        raise click.BadParameter(msg, param_hint="--group")

    def started(url: str) -> None:
        page = viewer_url(url, token, group)
        shown = viewer_url(url, None, group) + ("#token=TOKEN" if token else "")
        console.print(f"open {shown}", soft_wrap=True, markup=False)
        if not no_browser:  # off the event loop: some browsers block until they are closed
            threading.Thread(target=webbrowser.open, args=(page,), daemon=True).start()

    run_serve(
        opened,
        host=host,
        port=port,
        token=token,
        echo=lambda line: console.print(line, soft_wrap=True, markup=False),
        on_start=started,
    )
    console.print("stopped")  # serve returns on Ctrl-C
