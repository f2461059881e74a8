"""Drawing the Plotly figures of lib/ui/charts.py in the page: :func:`chart`.

The figures are Plotly's, built by plotly.py as before; the browser draws them with Plotly's *basic*
bundle (bar, scatter and pie traces: all the dashboard uses), vendored in ``lib/ui/assets`` (plotly.js
4.1.1, the release plotly.py and Streamlit ship; MIT, its licence beside it), instead of through
``st.plotly_chart``, whose frontend chunk carries the full plotly.js: 4.7 MB that take a new
visitor's browser about 0.75 s to evaluate before the first chart, and anything after it, is drawn.
The basic bundle is 1.2 MB and evaluates in 0.15-0.2 s.

The chart is a ``st.components.v2`` component, mounted in the page itself (no iframe): its script
loads the bundle once per page (``app.py`` serves it at ``/assets/...``; lib/ui/serve.py hints it
early), draws with ``Plotly.react`` and redraws when its container's width changes. Text takes the
theme's colour and font from the page, so it follows the light and the dark theme; backgrounds are
transparent (lib/ui/charts.py). Vendor text in figures is escaped where the figures are built.
"""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

ASSETS = Path(__file__).resolve().parent / "assets"
PLOTLY_JS = "plotly-basic-4.1.1.min.js"
ASSET_ROUTE = (
    "/assets"  # where app.py serves ASSETS, under the server's base URL path if one is set
)
PLOTLY_URL = (
    f".{ASSET_ROUTE}/{PLOTLY_JS}"  # relative to the page, as Streamlit's own static files are
)
CHART_CLASS = "dashboard-chart"
LIBRARY_TAG_ID = "dashboard-plotly"  # the library's <script> tag: one per page
# What the modebar offers: the image download and the zoom controls, no Plotly logo.
CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
}

# Loads the bundle once per page (a classic script that sets window.Plotly) through one <script> tag
# and one shared promise; the charts and lib/ui/serve.py's early load both call it. A failed load
# leaves neither behind, so the next chart tries again.
LIBRARY_LOADER = """
function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__dashboardPlotly) {
    window.__dashboardPlotly = new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.id = "__TAG__";
      tag.src = new URL(url, document.baseURI).href;
      const fail = (why) => {
        window.__dashboardPlotly = undefined;
        tag.remove();
        reject(new Error(why));
      };
      tag.addEventListener("load", () => (window.Plotly ? resolve(window.Plotly) : fail("no Plotly in the library")));
      tag.addEventListener("error", () => fail("the chart library did not load"));
      document.head.append(tag);
    });
  }
  return window.__dashboardPlotly;
}
""".replace("__TAG__", LIBRARY_TAG_ID)

# On a narrow screen a horizontal bar chart's plot area is narrow (its labels take the width) and
# the x-axis title, centred on it, would run past the chart's edge: it is broken onto two lines.
_FIT_TITLE = """
function fitTitle(Plotly, el) {
  const full = el._fullLayout;
  const text = full && full.xaxis && full.xaxis.title && full.xaxis.title.text;
  const svg = el.querySelector(".main-svg");
  const title = el.querySelector(".xtitle");
  if (!svg || !title || !text || text.includes("<br>")) return;
  const edge = svg.getBoundingClientRect();
  const box = title.getBoundingClientRect();
  if (box.right <= edge.right + 1 && box.left >= edge.left - 1) return;
  const middle = text.length / 2;
  let cut = -1;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === " " && (cut < 0 || Math.abs(i - middle) < Math.abs(cut - middle))) cut = i;
  }
  if (cut > 0) {
    Plotly.relayout(el, { "xaxis.title.text": text.slice(0, cut) + "<br>" + text.slice(cut + 1) });
  }
}
"""

# On a phone a category axis's long labels ("Dropbox Business Advanced (Dropbox - Business)") took two
# thirds of the width: each is wrapped onto at most two lines (the rest cut with "…"; the hover keeps
# the whole name) and the chart grows by a line per wrapped row. A wider screen gets them back whole.
_FIT_LABELS = """
function wrapLabel(text, max) {
  const lines = [""];
  for (const word of String(text).split(" ")) {
    const last = lines[lines.length - 1];
    if (last && (last + " " + word).length > max) lines.push(word);
    else lines[lines.length - 1] = last ? last + " " + word : word;
  }
  if (lines.length <= 2) return lines.join("<br>");
  const second = lines.slice(1).join(" ");
  return lines[0] + "<br>" + second.slice(0, Math.max(1, max - 1)) + "…";
}
function fitLabels(Plotly, el, height) {
  const full = el._fullLayout;
  const axis = full && full.yaxis;
  if (!axis || axis.type !== "category") return Promise.resolve();
  const narrow = el.clientWidth < 560;
  if (!narrow) {
    if (!el.__dashboardWrapped) return Promise.resolve();
    el.__dashboardWrapped = false;
    el.style.height = height + "px";
    return Plotly.relayout(el, { "yaxis.tickmode": "auto", "yaxis.tickvals": null, "yaxis.ticktext": null, height: height });
  }
  const cats = (axis._categories || []).map(String);
  const max = Math.max(14, Math.floor((el.clientWidth * 0.38) / 6.5));
  const text = cats.map((c) => (c.length > max ? wrapLabel(c, max) : c));
  const wrapped = text.filter((t) => t.includes("<br>")).length;
  if (!wrapped || el.__dashboardWrapped) return Promise.resolve();
  el.__dashboardWrapped = true;
  const taller = height + wrapped * 14;
  el.style.height = taller + "px";
  return Plotly.relayout(el, { "yaxis.tickmode": "array", "yaxis.tickvals": cats, "yaxis.ticktext": text, height: taller });
}
"""

_JS = (
    LIBRARY_LOADER
    + _FIT_TITLE
    + _FIT_LABELS
    + """
export default function ({ data, parentElement }) {
  const el = parentElement.querySelector(".__CLASS__");
  // Streamlit calls this again on the same element when the figure changes, without the cleanup
  // below (that runs only on unmount): the previous run is stopped here.
  if (el.__dashboardStop) el.__dashboardStop();
  let alive = true;
  let watcher;
  const stop = () => {
    alive = false;
    if (watcher) watcher.disconnect();
  };
  el.__dashboardStop = stop;
  const figure = JSON.parse(data.figure);
  const height = (figure.layout && figure.layout.height) || 400;
  el.style.height = height + "px";
  loadPlotly(data.url)
    .then((Plotly) => {
      if (!alive) return;
      const style = getComputedStyle(el);
      const layout = Object.assign({}, figure.layout, { autosize: true });
      layout.font = Object.assign({ family: style.fontFamily, color: style.color }, layout.font || {});
      layout.modebar = Object.assign(
        { bgcolor: "rgba(0,0,0,0)", color: "rgba(128,128,128,0.7)", activecolor: style.color },
        layout.modebar || {}
      );
      return Plotly.react(el, figure.data || [], layout, data.config).then(() => {
        if (!alive) return;
        const fit = () => fitLabels(Plotly, el, height).then(() => alive && fitTitle(Plotly, el));
        return fit().then(() => {
          if (!alive) return;
          watcher = new ResizeObserver(() => {
            if (alive) Plotly.Plots.resize(el).then(() => alive && fit()).catch(() => {});
          });
          watcher.observe(el);
        });
      });
    })
    .catch(() => {
      if (alive) el.textContent = "This chart could not be drawn: its library did not load. Reload the page.";
    });
  return () => {
    stop();
    if (el.__dashboardStop === stop) el.__dashboardStop = undefined;
    if (window.Plotly) window.Plotly.purge(el);
  };
}
"""
).replace("__CLASS__", CHART_CLASS)

# Axis, legend and annotation text in the page's text colour, live (a theme switch restyles it);
# hover labels keep the contrast Plotly computes for them.
_CSS = """
.__CLASS__ { width: 100%; }
.__CLASS__ .main-svg text:not(.hoverlayer text) { fill: currentColor !important; }
""".replace("__CLASS__", CHART_CLASS)

COMPONENT_NAME = "dashboard.chart"
_COMPONENT = st.components.v2.component(
    COMPONENT_NAME,
    html=f'<div class="{CHART_CLASS}" data-testid="dashboardChart"></div>',
    css=_CSS,
    js=_JS,
    isolate_styles=False,  # Plotly styles its modebar and hovers with rules it adds to the page's head
)


def asset_route(base_url_path: str | None) -> str:
    """Where the server mounts ASSETS: ``/assets``, or ``/<base>/assets`` under ``server.baseUrlPath``
    (the page's relative address of the bundle then resolves there, as Streamlit's own files do)."""
    base = (base_url_path or "").strip("/")
    return f"/{base}{ASSET_ROUTE}" if base else ASSET_ROUTE


def chart_data(fig: go.Figure) -> dict:
    """What the component receives: the figure as Plotly JSON, the bundle's address and the config."""
    return {"figure": fig.to_json(), "url": PLOTLY_URL, "config": CONFIG}


def chart(fig: go.Figure, *, key: str) -> None:
    """Draw one figure, full width, at the figure's own height."""
    _COMPONENT(key=key, data=chart_data(fig), width="stretch", height="content")


def figure_of(data_json: str) -> dict:
    """The figure in a component's data as the page sent it (for tests): Plotly JSON as a dict."""
    return json.loads(json.loads(data_json)["figure"])
