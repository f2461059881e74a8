"""Sign-in end to end: a real OpenID Connect provider on loopback, a real `streamlit run`, headless Chromium.

The provider is ``oidc-provider-mock`` (a real OIDC server: discovery document, authorization code flow
with a registered client, RS256-signed ID tokens, an end-session endpoint), run in this process on a free
loopback port. The browser follows the real redirects: the dashboard's Sign in button, the provider's
authorization page (one button per predefined user), the callback, the signed cookie; nothing is faked
inside the app. Each test has its own browser context, so its own cookies.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest
import requests

from tests.browser import (
    CHROMIUM_ARGS,
    Server,
    by_key,
    download,
    free_port,
    require_chromium,
    screenshot,
    toml_text,
    wait_idle,
)

pytestmark = pytest.mark.browser

# Provider subjects (the labels of the provider's sign-in buttons) and the claims its ID tokens carry.
USERS = {
    "ana-admin": {"email": "ana@acme.com", "email_verified": True, "name": "Ana Admin"},
    "vic-viewer": {"email": "vic@acme.com", "email_verified": True, "name": "Vic Viewer"},
    "eve-outsider": {"email": "eve@evilacme.com", "email_verified": True, "name": "Eve Outsider"},
    # An admin's address, but the provider does not vouch for it.
    "bob-unverified": {"email": "ana@acme.com", "email_verified": False, "name": "Not Ana"},
    # Microsoft Entra ID's way: no email_verified; xms_edov says whether the tenant owns the domain.
    "eda-entra": {"email": "eda@acme.com", "xms_edov": True, "name": "Eda Entra"},
    "ned-entra-unverified": {"email": "ana@acme.com", "xms_edov": False, "name": "Not Ana"},
}
ACCESS = {"allowed_domains": ["acme.com"], "admins": ["ana@acme.com"]}
COOKIE_SECRET = "a-cookie-secret-of-32-characters"


@pytest.fixture(scope="module")
def provider():
    """The OIDC provider's base URL, on a free loopback port, for the module."""
    require_chromium()
    from oidc_provider_mock import User, run_server_in_thread

    users = [User(sub=sub, claims=claims) for sub, claims in USERS.items()]
    with run_server_in_thread(require_client_registration=True, user_claims=users) as srv:
        yield f"http://localhost:{srv.server_port}"


def register_client(provider: str, redirect_uri: str) -> dict:
    """Register the dashboard as a client (dynamic registration, RFC 7591): its id and secret."""
    got = requests.post(
        f"{provider}/oauth2/clients",
        json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_basic"},
        timeout=10,
    )
    got.raise_for_status()
    return got.json()


def auth_section(provider: str, port: int, **override) -> dict:
    redirect_uri = f"http://127.0.0.1:{port}/oauth2callback"
    client = register_client(provider, redirect_uri)
    section = {
        "redirect_uri": redirect_uri,
        "cookie_secret": COOKIE_SECRET,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "server_metadata_url": f"{provider}/.well-known/openid-configuration",
    }
    section.update(override)
    return {k: v for k, v in section.items() if v is not None}


@pytest.fixture(scope="module")
def server(tmp_path_factory, provider):
    port = free_port()
    srv = Server(
        tmp_path_factory.mktemp("signin"),
        secrets={"auth": auth_section(provider, port), "access": ACCESS},
        port=port,
    )
    srv.provider = provider
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def at_app(page, server: Server) -> None:
    """Wait until the browser is back on the dashboard, the script run and everything drawn."""
    page.wait_for_url(re.compile(rf"^{re.escape(server.url)}/"), timeout=30_000)
    wait_idle(page)


def sign_in(page, server: Server, sub: str) -> None:
    """The real flow: the dashboard's Sign in, the provider's page, the pick of a user, the way back."""
    page.goto(server.url)
    wait_idle(page)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Authorize Client").wait_for(timeout=30_000)
    assert page.url.startswith(server.provider + "/oauth2/authorize?")  # the provider's own page
    page.get_by_role("button", name=sub, exact=True).click()
    at_app(page, server)


def sidebar_text(page) -> str:
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Signed in as").wait_for(timeout=30_000)
    return sidebar.inner_text()


def no_dashboard(page) -> None:
    """Nothing of the dashboard is drawn: no figure, no table, no sidebar filter, no exception."""
    assert page.locator("[data-testid='stMetric']").count() == 0
    assert page.locator("[data-testid='stDataFrame']").count() == 0
    assert page.get_by_text("Paid licenses only").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0


def csv_rows(got) -> list[dict]:
    return list(csv.DictReader(io.StringIO(Path(got.path()).read_text(encoding="utf-8-sig"))))


def reclaim_figures(page, server: Server) -> str:
    page.goto(f"{server.url}/reclaim")
    wait_idle(page)
    page.get_by_role("heading", name="Reclaim", exact=True).wait_for(timeout=30_000)
    tile = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']", has_text="Reclaimable paid seats")
    )
    tile.wait_for(timeout=30_000)
    return tile.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_admin_signs_in_sees_who_holds_seats_and_saves_a_price(server, page, tmp_path):
    sign_in(page, server, "ana-admin")
    assert "Signed in as ana@acme.com (admin)" in sidebar_text(page).replace("\\", "")
    page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=30_000)

    assert reclaim_figures(page, server)
    people = csv_rows(download(page, "dl-reclaim"))
    assert people and all("@" in r["user_email"] for r in people)
    screenshot(page, "signin-admin-reclaim")

    page.goto(f"{server.url}/price-book")
    wait_idle(page)
    from lib.analytics.pricing import price_book_to_csv
    from lib.jobs.demo import demo_price_book

    book = demo_price_book()
    price_file = tmp_path / "prices.csv"
    price_file.write_bytes(price_book_to_csv(book))
    by_key(page, "price-upload").locator("input[type=file]").set_input_files(str(price_file))
    apply = page.get_by_role("button", name=f"Replace the price book with these {len(book)} prices")
    apply.wait_for(timeout=30_000)
    apply.click()
    page.get_by_text(f"Replaced the price book with {len(book)} prices").wait_for(timeout=30_000)

    from lib.store import Store

    store = Store(f"sqlite:///{server.db}")
    try:
        log = store.audit_log()
    finally:
        store.close()
    mine = log[log["actor_email"] == "ana@acme.com"]
    assert len(mine) and set(mine["actor_role"]) == {"admin"}  # the store saw who signed in


def test_viewer_sees_counts_not_people_and_cannot_save_a_price(server, browser, page):
    # What an admin sees, to know which names and emails the viewer must not see.
    admin_context = browser.new_context(accept_downloads=True)
    admin = admin_context.new_page()
    sign_in(admin, server, "ana-admin")
    admin_count = reclaim_figures(admin, server)
    people = csv_rows(download(admin, "dl-reclaim"))
    admin_context.close()
    emails = {r["user_email"] for r in people if r["user_email"]}
    names = {r["user_name"] for r in people if r.get("user_name")}
    assert emails and names

    sign_in(page, server, "vic-viewer")
    assert "Signed in as vic@acme.com (viewer)" in sidebar_text(page).replace("\\", "")
    assert reclaim_figures(page, server) == admin_count  # the same counts
    page.get_by_text("Who holds each seat is shown to admins only").wait_for(timeout=30_000)
    assert by_key(page, "dl-reclaim").count() == 0
    per_license = download(page, "dl-reclaim-license")
    text = Path(per_license.path()).read_text(encoding="utf-8-sig")
    shown = page.locator("[data-testid='stMain']").inner_text()
    for person in emails | names:
        assert person not in text and person not in shown, person
    screenshot(page, "signin-viewer-reclaim")

    page.goto(f"{server.url}/price-book")
    wait_idle(page)
    page.get_by_text("only admins can change them").wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Save prices").count() == 0
    assert by_key(page, "price-upload").count() == 0
    assert by_key(page, "price-editor").count() == 0


def test_an_account_not_on_the_allow_list_is_refused(server, page):
    sign_in(page, server, "eve-outsider")
    page.get_by_text("You are signed in as eve@evilacme.com").wait_for(timeout=30_000)
    page.get_by_text("not on the dashboard's allow-list").wait_for(timeout=30_000)
    no_dashboard(page)
    page.goto(f"{server.url}/reclaim")  # a deep link is refused the same way
    wait_idle(page)
    page.get_by_text("not on the dashboard's allow-list").wait_for(timeout=30_000)
    no_dashboard(page)
    screenshot(page, "signin-refused")


@pytest.mark.parametrize("sub", ["bob-unverified", "ned-entra-unverified"])
def test_an_unverified_email_is_refused_even_an_admins_address(server, page, sub):
    sign_in(page, server, sub)
    page.get_by_text("this email address is not verified").wait_for(timeout=30_000)
    no_dashboard(page)


def test_an_entra_account_whose_domain_the_tenant_verified_gets_in(server, page):
    sign_in(page, server, "eda-entra")
    assert "Signed in as eda@acme.com (viewer)" in sidebar_text(page).replace("\\", "")
    page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=30_000)


def test_sign_out_ends_the_session(server, page):
    sign_in(page, server, "ana-admin")
    sidebar_text(page)
    assert any(c["name"] == "_streamlit_user" for c in page.context.cookies())
    page.locator("[data-testid='stSidebar']").get_by_role("button", name="Sign out").click()
    # Streamlit sends the browser to the provider's end-session endpoint, which returns it to the app.
    page.get_by_role("heading", name="End Session").wait_for(timeout=30_000)
    page.get_by_role("button", name="End session").click()
    at_app(page, server)
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    no_dashboard(page)
    assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]
    page.goto(f"{server.url}/price-book")  # still signed out on another page
    wait_idle(page)
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    no_dashboard(page)


def test_a_missing_cookie_secret_keeps_the_app_closed(tmp_path, provider, page):
    port = free_port()
    srv = Server(
        tmp_path,
        secrets={"auth": auth_section(provider, port, cookie_secret=None), "access": ACCESS},
        port=port,
    )
    srv.provider = provider
    try:
        page.goto(srv.url)
        wait_idle(page)
        page.get_by_text("cookie_secret").first.wait_for(timeout=30_000)
        page.get_by_text("the dashboard stays closed").wait_for(timeout=30_000)
        assert page.get_by_role("button", name="Sign in").count() == 0
        no_dashboard(page)
        screenshot(page, "signin-no-cookie-secret")
    finally:
        srv.stop()


def test_removing_an_address_from_the_allow_list_shuts_it_out(tmp_path, provider, page):
    """The cookie is still valid; the allow-list, re-read when the secrets file changes, decides."""
    port = free_port()
    auth = auth_section(provider, port)
    srv = Server(tmp_path, secrets={"auth": auth, "access": ACCESS}, port=port)
    srv.provider = provider
    try:
        sign_in(page, srv, "vic-viewer")
        assert "(viewer)" in sidebar_text(page)
        (tmp_path / "secrets.toml").write_text(
            toml_text({"auth": auth, "access": {"admins": ["ana@acme.com"]}}), encoding="utf-8"
        )
        refused = page.get_by_text("not on the dashboard's allow-list")
        deadline = time.monotonic() + 30
        while True:  # until Streamlit has re-read the file: each reload is a new run of the gate
            page.reload()
            wait_idle(page)
            if refused.count() or time.monotonic() > deadline:
                break
        refused.wait_for(timeout=1_000)
        no_dashboard(page)
    finally:
        srv.stop()
