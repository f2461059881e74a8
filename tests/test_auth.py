"""Who gets in, and in which role: the allow-list, the roles, open mode."""

from __future__ import annotations

import pytest

from lib.auth import (
    OPEN_ACTOR,
    AccessConfig,
    Actor,
    check_sign_in_settings,
    decide,
    load_access_config,
)
from lib.config import ConfigError

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x",
    "client_id": "id",
    "client_secret": "secret",
    "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration",
}


def config(**access) -> AccessConfig:
    return load_access_config({"auth": AUTH, "access": access})


def user(email="ana@acme.com", name="Ana", **extra) -> dict:
    return {"is_logged_in": True, "email": email, "name": name, "email_verified": True, **extra}


ACME = config(
    allowed_domains=["acme.com"], allowed_emails=["guest@partner.io"], admins=["boss@acme.com"]
)


def test_open_mode_without_auth_section_lets_everyone_edit():
    cfg = load_access_config(
        {"truto": {"api_token": "t"}, "access": {"allowed_domains": ["acme.com"]}}
    )
    assert cfg.open and not cfg.auth_enabled
    d = decide({"is_logged_in": False}, cfg)
    assert d.allowed and d.actor == OPEN_ACTOR and d.actor.role == "open" and d.actor.can_edit
    assert "open" in d.reason


def test_signed_out_is_asked_to_sign_in():
    d = decide({"is_logged_in": False}, ACME)
    assert not d.allowed and d.actor is None and d.reason == "sign in" and d.shown_as == ""
    assert not decide({}, ACME).allowed


def test_signed_in_but_not_listed_sees_who_they_are_and_nothing_else():
    d = decide(user("mallory@gmail.com", "Mallory"), ACME)
    assert not d.allowed and d.actor is None
    assert d.shown_as == "mallory@gmail.com"
    assert "allow-list" in d.reason


def test_viewer_by_domain_and_by_email():
    d = decide(user("ana@acme.com"), ACME)
    assert d.allowed and d.actor == Actor("ana@acme.com", "Ana", "viewer")
    assert not d.actor.can_edit
    d = decide(user("guest@partner.io", "Guest"), ACME)
    assert d.allowed and d.actor.role == "viewer"
    # The listed email does not open its whole domain.
    assert not decide(user("other@partner.io"), ACME).allowed


def test_admin_by_email_and_by_domain():
    d = decide(user("boss@acme.com", "Boss"), ACME)
    assert d.allowed and d.actor.role == "admin" and d.actor.can_edit
    cfg = config(admins=["@finance.acme.com", "it.acme.com"])
    assert decide(user("x@finance.acme.com"), cfg).actor.role == "admin"
    assert decide(user("y@it.acme.com"), cfg).actor.role == "admin"
    assert not decide(
        user("z@acme.com"), cfg
    ).allowed  # admins by domain do not open the parent domain


@pytest.mark.parametrize(
    "email",
    [
        "eve@evilacme.com",  # suffix without the dot
        "eve@acme.com.evil.io",  # the allowed domain as a prefix
        "eve@sub.acme.com",  # subdomains are not the domain
        "eve@acme.co",
        "eve@acme.com@evil.io",  # two @: malformed, refused
        "eve@evil.io@acme.com",
        "acme.com",  # no @ at all
        "eve@acme.com.",  # the fully qualified form (trailing dot): the same domain, allowed
    ],
)
def test_domain_suffix_and_format_attacks(email):
    d = decide(user(email), ACME)
    if email == "eve@acme.com.":
        assert (
            d.allowed and d.actor.email == "eve@acme.com"
        )  # the fully qualified form is the same domain
    else:
        assert not d.allowed and d.actor is None, email


def test_surrounding_whitespace_is_trimmed_but_inner_is_refused():
    assert decide(user(" ana@acme.com "), ACME).allowed
    assert not decide(user("ana @acme.com"), ACME).allowed


def test_case_insensitive_matching():
    assert decide(user("Ana@ACME.com"), ACME).actor.role == "viewer"
    assert decide(user("BOSS@Acme.Com"), ACME).actor.role == "admin"
    cfg = config(allowed_domains=["ACME.COM"], admins=["Boss@Acme.com"])
    assert decide(user("ana@acme.com"), cfg).allowed
    assert decide(user("boss@acme.com"), cfg).actor.role == "admin"
    assert decide(user("Ana@ACME.com"), ACME).actor.email == "ana@acme.com"


@pytest.mark.parametrize(
    "flag", [False, "false", 0, None, "", "unverified", "no", "off", "n", 1, "yes", "True "[:0]]
)
def test_unverified_email_is_refused(flag):
    d = decide(user("boss@acme.com", email_verified=flag), ACME)
    assert not d.allowed and "not verified" in d.reason and d.shown_as == "boss@acme.com"


def test_only_a_true_verification_is_accepted():
    assert decide(user("boss@acme.com", email_verified=True), ACME).actor.role == "admin"
    assert decide(user("boss@acme.com", email_verified="TRUE"), ACME).actor.role == "admin"
    missing = {"is_logged_in": True, "email": "ana@acme.com", "name": "Ana"}
    assert not decide(
        missing, ACME
    ).allowed  # an IdP that does not say the address is verified: refused


def test_signed_in_without_email_is_refused():
    d = decide({"is_logged_in": True, "name": "No Mail"}, ACME)
    assert not d.allowed and d.shown_as == "No Mail"


def test_auth_without_allow_list_fails_closed():
    cfg = load_access_config({"auth": AUTH})
    assert cfg.auth_enabled and not cfg.has_allow_list
    d = decide(user("anyone@acme.com"), cfg)
    assert not d.allowed and "[access]" in d.reason


def test_attribute_style_user_object():
    class Proxy:  # st.user also answers attributes
        is_logged_in = True
        email = "ana@acme.com"
        name = "Ana"
        email_verified = True

    assert decide(Proxy(), ACME).actor.role == "viewer"


@pytest.mark.parametrize(
    "access, needle",
    [
        ({"allowed_domains": ["*.acme.com"]}, "wildcards"),
        ({"allowed_domains": ["acme..com"]}, "not a domain"),
        ({"allowed_emails": ["not-an-email"]}, "not an email"),
        ({"admins": ["a@b@c.com"]}, "not an email"),
        ({"allowed_domains": "acme.com", "viewers": ["x"]}, "unknown key"),
        ({"allowed_emails": [3]}, "not text"),
    ],
)
def test_bad_access_config_names_the_key(access, needle):
    with pytest.raises(ConfigError, match=needle):
        load_access_config({"auth": AUTH, "access": access})


def test_actor_roles():
    assert Actor("a@b.c", None, "admin").can_edit
    assert OPEN_ACTOR.can_edit
    assert not Actor("a@b.c", None, "viewer").can_edit
    with pytest.raises(ValueError):
        Actor("a@b.c", None, "root")


def test_complete_sign_in_settings_pass():
    check_sign_in_settings(AUTH)
    # the provider's keys may sit in [auth.default] instead (Streamlit's default provider)
    provider = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    check_sign_in_settings(
        {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "s", "default": provider}
    )
    check_sign_in_settings({**AUTH, "redirect_uri": "http://localhost:{port}/oauth2callback"})


@pytest.mark.parametrize("key", ["cookie_secret", "redirect_uri", "client_id", "client_secret"])
@pytest.mark.parametrize("value", ["<missing>", "", "   ", 42, None])
def test_a_sign_in_key_missing_or_empty_is_named(key, value):
    auth = {k: v for k, v in AUTH.items() if k != key}
    if value != "<missing>":
        auth[key] = value
    with pytest.raises(
        ConfigError, match=rf"\[auth\]: sign-in is not configured: {key} is missing or empty"
    ):
        check_sign_in_settings(auth)


def test_every_missing_sign_in_key_is_named_at_once():
    with pytest.raises(ConfigError, match="cookie_secret, server_metadata_url are missing"):
        check_sign_in_settings(
            {"redirect_uri": AUTH["redirect_uri"], "client_id": "id", "client_secret": "s"}
        )


def test_only_a_named_provider_is_not_enough():
    """The Sign in button uses the default provider: [auth.okta] alone would fail at the first sign-in."""
    provider = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    auth = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": "s", "okta": provider}
    with pytest.raises(ConfigError, match="client_id, client_secret, server_metadata_url"):
        check_sign_in_settings(auth)


def test_a_redirect_uri_streamlit_does_not_answer_is_refused():
    with pytest.raises(ConfigError, match="must end in /oauth2callback"):
        check_sign_in_settings({**AUTH, "redirect_uri": "https://licenses.acme.com/callback"})


@pytest.mark.parametrize(
    "claims, allowed",
    [
        (
            {"xms_edov": True},
            True,
        ),  # Entra: no email_verified, the domain is the tenant's, verified
        ({"xms_edov": "true"}, True),
        ({"xms_edov": False}, False),
        ({"xms_edov": "1"}, False),
        ({"xms_edov": None}, False),
        ({}, False),
        ({"email_verified": False, "xms_edov": True}, False),  # a present email_verified decides
        ({"email_verified": "false", "xms_edov": True}, False),
        ({"email_verified": True, "xms_edov": False}, True),
    ],
)
def test_entra_domain_owner_verified_stands_in_only_for_a_missing_email_verified(claims, allowed):
    signed_in = {"is_logged_in": True, "email": "boss@acme.com", "name": "Boss", **claims}
    d = decide(signed_in, ACME)
    assert d.allowed is allowed
    if allowed:
        assert d.actor.role == "admin"
    else:
        assert "not verified" in d.reason and "xms_edov" in d.reason
