"""The page-load hints (lib/ui/serve.py) and the chart component's data (lib/ui/plot.py), without a browser."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import plotly.graph_objects as go
import pytest
import streamlit

from lib.ui import plot, serve

ROOT = Path(__file__).resolve().parent.parent
STREAMLIT_DOCUMENT = (Path(streamlit.__file__).parent / "static" / "index.html").read_bytes()


def run(middleware, request_headers, response_start, body_parts, extensions=None):
    """One request through the middleware in front of a fake app; what the app saw and what was sent."""
    seen = {}

    async def inner(scope, receive, send):
        seen["headers"] = scope["headers"]
        seen["extensions"] = scope.get("extensions")
        await send({"type": "http.response.start", **response_start})
        for i, part in enumerate(body_parts):
            await send(
                {"type": "http.response.body", "body": part, "more_body": i < len(body_parts) - 1}
            )

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/overview",
        "headers": request_headers,
        "extensions": extensions or {},
    }
    asyncio.run(middleware(inner)(scope, receive, send))
    return seen, sent


BROWSER = [
    (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
    (b"accept-encoding", b"gzip, br"),
]
HTML_START = {
    "status": 200,
    "headers": [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(STREAMLIT_DOCUMENT)).encode()),
        (b"etag", b'"abc"'),
        (b"cache-control", b"no-cache"),
    ],
}


def test_streamlits_document_gets_the_preload_and_the_early_load_before_its_head_ends():
    seen, sent = run(
        serve.PageLoadMiddleware,
        BROWSER,
        HTML_START,
        [STREAMLIT_DOCUMENT[:1000], STREAMLIT_DOCUMENT[1000:]],
    )
    # Asked of Streamlit uncompressed, so the hints can go in.
    assert all(k != b"accept-encoding" for k, _ in seen["headers"])
    start, body = sent[0], sent[1]
    document = body["body"].decode()
    head = document[: document.index("</head>")]
    assert f'<link rel="preload" as="script" href="{plot.PLOTLY_URL}">' in head
    assert json.dumps(plot.PLOTLY_URL) in head and json.dumps(plot.LIBRARY_TAG_ID) in head
    # Streamlit's own tags are still there, before ours.
    assert head.index("static/js/index.") < head.index(plot.PLOTLY_JS)
    headers = dict(start["headers"])
    assert int(headers[b"content-length"]) == len(body["body"])
    assert b"etag" not in headers and headers[b"cache-control"] == b"no-cache"
    assert len(sent) == 2


def test_a_document_is_asked_unconditionally_and_as_body_messages():
    # A browser's copy from before the hints must not be revalidated (a 304 would keep it), and a
    # server offering to send files itself would skip the body the hints go into.
    stale = [
        *BROWSER,
        (b"if-none-match", b'"abc"'),
        (b"if-modified-since", b"Fri, 04 Dec 2026 18:18:57 GMT"),
    ]
    seen, sent = run(
        serve.PageLoadMiddleware,
        stale,
        HTML_START,
        [STREAMLIT_DOCUMENT],
        extensions={"http.response.pathsend": {}, "http.response.trailers": {}},
    )
    assert [k for k, _ in seen["headers"]] == [b"accept"]
    assert seen["extensions"] == {"http.response.trailers": {}}
    assert plot.PLOTLY_JS.encode() in sent[1]["body"]


def test_the_library_is_served_under_the_base_url_path_when_one_is_set():
    assert plot.asset_route("") == plot.asset_route(None) == "/assets"
    assert plot.asset_route("dash") == plot.asset_route("/dash/") == "/dash/assets"


def test_the_library_address_is_relative_to_the_page_like_streamlits_own():
    assert plot.PLOTLY_URL == f"./assets/{plot.PLOTLY_JS}"
    assert b'src="./static/js/index.' in STREAMLIT_DOCUMENT
    assert (plot.ASSETS / plot.PLOTLY_JS).stat().st_size > 1_000_000
    assert "plotly.js (basic - minified) v4.1.1" in (plot.ASSETS / plot.PLOTLY_JS).read_text()[:200]


@pytest.mark.parametrize(
    "headers, start",
    [
        # a script, a font, a health check: not a document request
        ([(b"accept", b"*/*"), (b"accept-encoding", b"gzip")], HTML_START),
        # a document that is not 200 (a 304 revalidation), or already encoded
        (BROWSER, {"status": 304, "headers": [(b"content-type", b"text/html")]}),
        (
            BROWSER,
            {
                "status": 200,
                "headers": [(b"content-type", b"text/html"), (b"content-encoding", b"gzip")],
            },
        ),
        # JSON asked for with text/html among its types
        (BROWSER, {"status": 200, "headers": [(b"content-type", b"application/json")]}),
    ],
)
def test_every_other_response_passes_as_it_is(headers, start):
    parts = [b"<html><head>", b"</head></html>"]
    seen, sent = run(serve.PageLoadMiddleware, headers, start, parts)
    assert [m.get("body") for m in sent[1:]] == parts
    assert sent[0]["headers"] == start["headers"]
    if (b"accept", b"*/*") in headers:
        assert seen["headers"] == headers  # the request reached Streamlit unchanged


def test_a_document_that_is_not_streamlits_is_not_touched():
    other = b"<html><head><title>x</title></head><body></body></html>"
    assert serve.add_hints(other) == other
    assert serve.add_hints(b"\xff\xfe not utf-8") == b"\xff\xfe not utf-8"
    _, sent = run(
        serve.PageLoadMiddleware,
        BROWSER,
        {"status": 200, "headers": [(b"content-type", b"text/html")]},
        [other],
    )
    assert (
        sent[1]["body"] == other
        and dict(sent[0]["headers"])[b"content-length"] == str(len(other)).encode()
    )


def test_the_hints_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(serve.HINTS_ENV, "0")
    seen, sent = run(serve.PageLoadMiddleware, BROWSER, HTML_START, [STREAMLIT_DOCUMENT])
    assert sent[1]["body"] == STREAMLIT_DOCUMENT and seen["headers"] == BROWSER


def test_the_chart_component_gets_the_figure_as_plotly_json():
    fig = go.Figure(go.Bar(x=[1.5, 2.0], y=["<b>A</b> &amp; co", "B"], orientation="h"))
    fig.update_layout(height=321)
    data = plot.chart_data(fig)
    assert data["url"] == plot.PLOTLY_URL and data["config"]["displaylogo"] is False
    shown = plot.figure_of(json.dumps(data))
    assert shown == json.loads(fig.to_json())
    assert shown["layout"]["height"] == 321 and shown["data"][0]["type"] == "bar"


def test_the_server_is_app_pys_own_and_pages_draw_charts_only_through_the_component():
    source = (ROOT / "app.py").read_text()
    assert "app = st.App(" in source and "PageLoadMiddleware" in source
    assert 'asset_route(st.get_option("server.baseUrlPath"))' in source
    for page in (ROOT / "pages").glob("*.py"):
        assert "plotly_chart" not in page.read_text(), page.name
