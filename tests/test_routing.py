"""The page registry, Streamlit's legacy multipage mode, and download names: the routing rules pinned."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.source_util import page_icon_and_name
from streamlit.testing.v1 import AppTest

from lib import ui

ROOT = Path(__file__).resolve().parent.parent


def test_registry_lists_every_page_file_once():
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
    assert sorted(p.file for p in ui.PAGES) == files
    assert len({p.key for p in ui.PAGES}) == len({p.url_path for p in ui.PAGES}) == len(ui.PAGES)
    assert ui.HOME in ui.PAGE_BY_KEY


def test_a_legacy_mode_deep_link_names_the_same_page_as_the_router():
    """Until st.navigation first runs, Streamlit serves pages/ by file name (its legacy mode), and a deep link
    resolves to the page whose inferred name is the address. Ours must be the same name, or the first visitor
    after a start gets "Page not found". This fails the day Streamlit infers page names differently."""
    for spec in ui.PAGES:
        assert page_icon_and_name(ROOT / spec.file)[1] == spec.url_path, spec


def _navigation_script():
    import json

    import streamlit as st

    from lib import ui

    st.text(
        json.dumps(
            [
                {
                    "default": p._default,
                    "url_path": p.url_path,
                    "file": str(p._page),
                    "hidden": p._visibility == "hidden",
                }
                for p in ui.navigation_pages()
            ]
        )
    )


def test_navigation_keeps_a_deep_link_for_the_home_page():
    """Streamlit gives its default page only the bare address; Overview must keep /overview as well."""
    at = AppTest.from_function(_navigation_script, default_timeout=30)
    at.run()
    assert not at.exception
    pages = json.loads(at.text[0].value)
    defaults = [p for p in pages if p["default"]]
    assert len(defaults) == 1 and defaults[0]["url_path"] == "" and defaults[0]["hidden"]
    assert defaults[0]["file"].endswith(ui.PAGE_BY_KEY[ui.HOME].file)
    assert {p["url_path"] for p in pages if not p["default"]} == {
        spec.url_path for spec in ui.PAGES
    }


def test_running_the_router_leaves_the_legacy_mode(tmp_path, monkeypatch):
    """leave_legacy_multipage_mode relies on st.navigation switching the legacy mode off for the server."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'dashboard.sqlite'}")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()  # AppTest starts every run in the legacy mode (a pages/ folder is beside app.py)
    assert not at.exception
    assert PagesManager.uses_pages_directory is False


def _download_names() -> list[tuple[str, str]]:
    """(page file, file-name pattern) of every download button the pages draw."""
    found = []
    for path in sorted((ROOT / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            arg = None
            if name == "ui.download" and len(node.args) >= 2:
                arg = node.args[1]
            elif name.endswith("download_button"):
                kw = {k.arg: k.value for k in node.keywords}
                fn = kw.get("file_name")
                if isinstance(fn, ast.Call) and fn.args:
                    arg = fn.args[0]
            if arg is None:
                continue
            if isinstance(arg, ast.Constant):
                pattern = re.escape(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                pattern = "".join(
                    re.escape(v.value) if isinstance(v, ast.Constant) else "[a-z0-9_-]+"
                    for v in arg.values
                )
            else:
                raise AssertionError(
                    f"{path.name}: a download name that is not a literal: {ast.unparse(arg)}"
                )
            found.append((path.name, pattern))
    return found


def test_every_download_has_its_own_file_name():
    names = _download_names()
    assert len(names) >= 12
    for i, (page_a, a) in enumerate(names):
        for page_b, b in names[i + 1 :]:
            # Two patterns clash when a name one of them gives could be given by the other.
            sample_a = re.sub(r"\[a-z0-9_-\]\+", "integration", a).replace("\\", "")
            sample_b = re.sub(r"\[a-z0-9_-\]\+", "integration", b).replace("\\", "")
            assert not re.fullmatch(b, sample_a) and not re.fullmatch(a, sample_b), (
                page_a,
                a,
                page_b,
                b,
            )
