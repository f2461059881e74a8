"""The HTML document Streamlit serves for every page address, with the chart library loaded early.

A new visitor's deep link is mostly the browser's time: it loads Streamlit's frontend, opens the
page's connection, and then waits while the server runs the page's script (about 0.5 s on the demo
data). Left alone, the chart library (lib/ui/plot.py: Plotly's basic bundle, 1.2 MB) is fetched only
when the first chart arrives, near the end of that run, from a server then busy with the script,
and evaluated after it. :class:`PageLoadMiddleware` adds two tags before the document's ``</head>``:

- a ``preload`` of the library, fetched while the server is still idle;
- a small script that, once the page's connection opens, runs the library, so its evaluation
  (about 0.15 s) fills the wait for the script instead of following it.

Neither changes what is drawn: a chart still loads the library itself when it finds it missing
(lib/ui/plot.py). Preloading Streamlit's own frontend chunks as well was measured and made the load
slower (the server, answering some 70 requests at once, was late with the connection).
``DASHBOARD_PAGE_HINTS=0`` serves Streamlit's document as it is, for comparison
(``bench/page.py --browser``; figures in the README). ``app.py`` installs the middleware through
``st.App``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lib.ui.plot import ASSETS, LIBRARY_LOADER, PLOTLY_URL

HINTS_ENV = "DASHBOARD_PAGE_HINTS"
# Streamlit's document: its entry script, and where it finds static/ (a relative prefix, so a deep
# link or a base URL path resolves as Streamlit's own tags do).
_ENTRY = re.compile(r'<script type="module" crossorigin src="([^"]*?)static/js/index\.[\w\-]+\.js"')


def head_hints(library: str = PLOTLY_URL) -> str:
    """The tags added before ``</head>``: the library's preload, then its load once the connection opens."""
    # The first WebSocket the page opens is its session: once it is open the server runs the script.
    # Later connections (a reconnect) are left alone. The load is the charts' own (lib/ui/plot.py):
    # a chart that arrives first, or after this load failed, simply calls it again.
    return (
        f'<link rel="preload" as="script" href="{library}">'
        '<script type="module">' + LIBRARY_LOADER + "const Native = window.WebSocket;"
        "window.WebSocket = class extends Native { constructor(...args) { super(...args);"
        " window.WebSocket = Native;"
        ' this.addEventListener("open", () => setTimeout(() =>'
        f" loadPlotly({json.dumps(library)}).catch(() => {{}}), 0), {{ once: true }}); }} }};"
        "</script>"
    )


def add_hints(document: bytes) -> bytes:
    """Streamlit's HTML document with the hints before its ``</head>``; any other document unchanged."""
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError:
        return document
    if not _ENTRY.search(text) or "</head>" not in text:
        return document
    return text.replace("</head>", head_hints() + "</head>", 1).encode("utf-8")


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes:
    return next((v for k, v in headers if k.lower() == name), b"")


class PageLoadMiddleware:
    """ASGI middleware: Streamlit's HTML document with :func:`head_hints`; every other response as it is.

    A document request is a GET whose ``Accept`` names ``text/html`` (what a browser sends when it
    opens an address). It is asked of Streamlit without ``Accept-Encoding``, so the document comes
    back uncompressed (it is 8 KB) and the hints can go in; a response that is not a 200
    ``text/html``, or is encoded anyway, passes unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.enabled = os.environ.get(HINTS_ENV, "1").strip() != "0"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.enabled
            or scope.get("type") != "http"
            or scope.get("method") != "GET"
            or b"text/html" not in _header(scope.get("headers", []), b"accept")
        ):
            await self.app(scope, receive, send)
            return
        # Asked uncompressed and unconditionally (a browser's copy from before the hints would
        # otherwise be revalidated with a 304 and kept), and sent as body messages, never as a
        # file path the server would send itself.
        asked = (b"accept-encoding", b"if-none-match", b"if-modified-since")
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() not in asked]
        extensions = {
            k: v
            for k, v in (scope.get("extensions") or {}).items()
            if k != "http.response.pathsend"
        }
        scope["extensions"] = extensions
        start: dict[str, Any] = {}
        body: list[bytes] = []
        passing = False

        async def held(message: Message) -> None:
            nonlocal passing
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if (
                    message.get("status") == 200
                    and _header(headers, b"content-type").startswith(b"text/html")
                    and not _header(headers, b"content-encoding")
                ):
                    start.update(message)
                else:
                    passing = True
                    await send(message)
                return
            if passing or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            document = add_hints(b"".join(body))
            # The validators describe Streamlit's file, not this document: without them the browser
            # fetches the document again (it is no-cache anyway) rather than revalidating it.
            dropped = (b"content-length", b"etag", b"last-modified")
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in dropped]
            headers.append((b"content-length", str(len(document)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": document})

        await self.app(scope, receive, held)


class _Immutable:
    """The files of ``ASSETS`` carry their version in their name: a browser may keep them a year."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def cached(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                headers.append((b"cache-control", b"public, max-age=31536000, immutable"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, cached)


def assets() -> ASGIApp:
    """What app.py mounts at ``ASSET_ROUTE``: the chart bundle (and its licence), cached for a year."""
    return _Immutable(StaticFiles(directory=ASSETS))
