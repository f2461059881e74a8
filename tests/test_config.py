import pickle
from pathlib import Path

import pytest

from lib.config import ConfigError, Secret, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_without_anything_mean_demo():
    s = load_settings(env={}, secrets={})
    assert s.demo and s.api_token is None and s.base_url == "https://api.truto.one"
    assert s.products == ("azure_active_directory",) and s.ignore_remote_data is True


def test_billing_is_listed_by_default_and_can_be_switched_off():
    assert load_settings(env={}, secrets={}).fetch_billing is True
    assert load_settings(env={}, secrets={"truto": {"fetch_billing": False}}).fetch_billing is False
    s = load_settings(env={"TRUTO_FETCH_BILLING": "no"}, secrets={"truto": {"fetch_billing": True}})
    assert s.fetch_billing is False and s.sources["fetch_billing"] == "TRUTO_FETCH_BILLING"
    with pytest.raises(ConfigError, match="TRUTO_FETCH_BILLING"):
        load_settings(env={"TRUTO_FETCH_BILLING": "sometimes"}, secrets={})


def test_secrets_section_is_read_and_environment_wins():
    secrets = {
        "truto": {
            "api_token": "from-file",
            "base_url": "https://a.example/",
            "tenant_id": "t-file",
            "integrated_account_ids": ["a", "b"],
        }
    }
    s = load_settings(
        env={"TRUTO_API_TOKEN": "from-env", "TRUTO_INTEGRATED_ACCOUNT_IDS": "x, y ,z"},
        secrets=secrets,
    )
    assert s.api_token.reveal() == "from-env" and not s.demo
    assert s.base_url == "https://a.example" and s.tenant_id == "t-file"
    assert s.integrated_account_ids == ("x", "y", "z")
    assert (
        s.sources["api_token"] == "TRUTO_API_TOKEN"
        and s.sources["tenant_id"] == "secrets.toml [truto] tenant_id"
    )


@pytest.mark.parametrize(
    "env, words",
    [
        ({"TRUTO_BASE_URL": "api.truto.one"}, "TRUTO_BASE_URL"),
        ({"TRUTO_BASE_URL": "ftp://api.truto.one"}, "not an http(s) URL"),
        (
            {"TRUTO_INTEGRATED_ACCOUNT_IDS": "a,,b"},
            "TRUTO_INTEGRATED_ACCOUNT_IDS: entry 2 is empty",
        ),
        ({"TRUTO_INTEGRATED_ACCOUNT_IDS": "a,a"}, "listed twice"),
        ({"TRUTO_MAX_WORKERS": "0"}, "TRUTO_MAX_WORKERS: must be at least 1"),
        ({"TRUTO_MAX_WORKERS": "many"}, "TRUTO_MAX_WORKERS"),
        (
            {"TRUTO_PRODUCTS": "exchange"},
            "TRUTO_PRODUCTS: 'exchange' is not a Microsoft 365 product",
        ),
        ({"TRUTO_IGNORE_REMOTE_DATA": "perhaps"}, "TRUTO_IGNORE_REMOTE_DATA"),
        ({"TRUTO_READ_TIMEOUT": "-1"}, "TRUTO_READ_TIMEOUT"),
    ],
)
def test_bad_values_name_the_setting(env, words):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env, secrets={})
    assert words in str(info.value)


def test_bad_secrets_value_names_the_key():
    with pytest.raises(
        ConfigError, match=r"secrets.toml \[truto\] integrated_account_ids: entry 1 is empty"
    ):
        load_settings(env={}, secrets={"truto": {"integrated_account_ids": [" "]}})
    with pytest.raises(ConfigError, match="unknown key 'token'"):
        load_settings(env={}, secrets={"truto": {"token": "x"}})


def test_secrets_file_is_read(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text('[truto]\napi_token = "tok"\nintegrated_account_ids = "a,b"\n')
    s = load_settings(env={}, secrets_path=path)
    assert s.api_token.reveal() == "tok" and s.integrated_account_ids == ("a", "b")
    path.write_text("[truto\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, secrets_path=path)


def test_example_secrets_file_is_valid():
    s = load_settings(env={}, secrets_path=ROOT / ".streamlit" / "secrets.toml.example")
    assert s.base_url.startswith("https://")


def test_token_never_shows():
    s = load_settings(env={"TRUTO_API_TOKEN": "sk-live-abcdef123456"}, secrets={})
    for text in (repr(s), str(s), f"{s}", f"{s.api_token}", str(s.fingerprint())):
        assert "sk-live-abcdef123456" not in text
    with pytest.raises(TypeError):
        pickle.dumps(s.api_token)


def test_fingerprint_changes_with_configuration_but_not_with_nothing():
    a = load_settings(env={"TRUTO_API_TOKEN": "one"}, secrets={})
    b = load_settings(env={"TRUTO_API_TOKEN": "one"}, secrets={})
    c = load_settings(env={"TRUTO_API_TOKEN": "two"}, secrets={})
    d = load_settings(env={"TRUTO_API_TOKEN": "one", "TRUTO_TENANT_ID": "t"}, secrets={})
    assert a.fingerprint() == b.fingerprint()
    assert len({a.fingerprint(), c.fingerprint(), d.fingerprint()}) == 3


def test_secret_equality():
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and not Secret("")


def test_cache_ttl_is_configurable_and_checked():
    from lib.config import cache_ttl_seconds

    assert cache_ttl_seconds(env={}, secrets={}) == 15 * 60
    assert cache_ttl_seconds(env={}, secrets={"dashboard": {"cache_ttl_minutes": 5}}) == 300
    assert (
        cache_ttl_seconds(
            env={"DASHBOARD_CACHE_TTL_MINUTES": "0.5"},
            secrets={"dashboard": {"cache_ttl_minutes": 5}},
        )
        == 30
    )
    with pytest.raises(ConfigError, match="DASHBOARD_CACHE_TTL_MINUTES"):
        cache_ttl_seconds(env={"DASHBOARD_CACHE_TTL_MINUTES": "soon"}, secrets={})


def test_a_token_with_a_line_break_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as info:
        load_settings(env={"TRUTO_API_TOKEN": "tok-SECRET\nPART2"}, secrets={})
    assert "TRUTO_API_TOKEN" in str(info.value) and "SECRET" not in str(info.value)
    with pytest.raises(ConfigError):
        load_settings(env={"TRUTO_API_TOKEN": "tok-é"}, secrets={})


@pytest.mark.parametrize(
    "url, secret",
    [
        ("postgresql://dash:p@ssw0rd-TAIL@127.0.0.1:1/db", "ssw0rd-TAIL"),
        ("postgresql://dash@host/db?password=TOPSECRET&x=1", "TOPSECRET"),
        ("postgresql:/dash:TOPSECRET@db/x", "TOPSECRET"),
        ("postgresql://dash:pw-SECRET@h:5432/db", "pw-SECRET"),
    ],
)
def test_database_passwords_never_show(url, secret):
    from lib.store import database_url, redact_url

    assert secret not in redact_url(url)
    try:
        database_url(env={"DATABASE_URL": url}, secrets={})
    except ConfigError as exc:
        assert secret not in str(exc)
