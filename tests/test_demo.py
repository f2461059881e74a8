"""The demo data set keeps the promises of issue 2, and the demo price seeding runs once."""

from lib.analytics.metrics import add_metrics
from lib.auth import Actor
from lib.config import load_settings
from lib.integrations import integration_label, supported_license_fields, supports_licenses
from lib.jobs import demo as demo_seed
from lib.store import Store
from lib.truto import demo
from lib.truto.source import fetch


def test_demo_uses_only_license_integrations_and_their_fields():
    data = demo.demo_dataset()
    assert len(data["accounts"]) >= 8
    assert len({a["tenant_id"] for a in data["accounts"]}) == 2
    for acc in data["accounts"]:
        name = acc["integration"]["name"]
        assert supports_licenses(name) is True, name
        allowed = set(supported_license_fields(name))
        for rec in data["licenses"][acc["id"]]:
            public = {k for k in rec if not k.startswith("_")}
            assert public <= allowed, (integration_label(name), public - allowed)


def test_demo_covers_the_cases_a_dashboard_must_show():
    data = demo.demo_dataset()
    by_label = {}
    for acc in data["accounts"]:
        by_label.setdefault(integration_label(acc["integration"]["name"]), []).append(acc)
    github = by_label["GitHub"][0]
    assert len(data["organizations"][github["id"]]) == 2
    m365 = by_label["Microsoft 365"][0]
    assert {r["_product"] for r in data["licenses"][m365["id"]]} == {
        "azure_active_directory",
        "onedrive",
    }
    assert [a["status"] for a in data["accounts"]].count("needs_reauth") == 1
    atlassian = data["licenses"][by_label["Atlassian"][0]["id"]]
    assert all("assigned_quantity" not in r and "available_quantity" not in r for r in atlassian)
    priced = [r for recs in data["licenses"].values() for r in recs if "unit_amount" in r]
    assert priced and all(r["id"].startswith("lic-05") for r in priced)  # DocuSign only


def test_demo_mix_of_flags_and_free_and_paid():
    result = fetch(load_settings(env={}, secrets={}))
    df = add_metrics(result.licenses, demo_seed.demo_price_book())
    flags = set(df["flag"].astype(str))
    assert {"over_allocated", "under_used", "at_capacity", "not_reported", "ok"} <= flags
    assert set(df["is_paid"].dropna()) == {True, False}


def test_demo_pricing_is_seeded_once_and_never_over_an_admins_choice(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'd.sqlite'}")
    assert demo_seed.seed_demo_pricing(store) is True
    assert len(store.get_price_book()) == len(demo_seed.DEMO_PRICES)
    assert store.get_fx_rates().get("EUR") == 1.08
    store.save_price_book(store.get_price_book().iloc[:0], Actor("ana@acme.com", "Ana", "admin"))
    assert demo_seed.seed_demo_pricing(store) is False
    assert store.get_price_book().empty
