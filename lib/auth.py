"""Who may open the dashboard, and who may change its settings.

Pure logic: no Streamlit import at module level, so it is tested without a
browser and used by the store's server-side permission checks.

Configuration, in ``.streamlit/secrets.toml``:

- ``[auth]``: Streamlit's own OIDC section: ``redirect_uri`` (ending in
  ``/oauth2callback``), ``cookie_secret``, and the provider's ``client_id``,
  ``client_secret`` and ``server_metadata_url`` (in ``[auth]`` itself or in
  ``[auth.default]``: the Sign in button uses Streamlit's default provider).
  When it is present, everyone signs in with ``st.login``; without it the app
  runs open for local use (role ``open``, which may edit). An ``[auth]``
  lacking one of those keys (an empty table too) keeps the app closed (``check_sign_in_settings``):
  without ``cookie_secret`` Streamlit cannot sign the session cookie, and
  would fail only at the first sign-in.
- ``[access]``: our allow-list, read only when ``[auth]`` is present:

  - ``allowed_emails``: addresses that may sign in (viewers);
  - ``allowed_domains``: whole domains, e.g. ``"acme.com"``: the part after
    the ``@`` must equal it exactly (ignoring case). No suffix matching:
    ``evilacme.com``, ``acme.com.evil.io`` and ``sub.acme.com`` do not match
    ``acme.com``; list each domain that may sign in;
  - ``admins``: addresses (``"ana@acme.com"``) or domains (``"acme.com"`` or
    ``"@acme.com"``) whose people may also edit the price book, exchange
    rates, thresholds and buffer. Admins need not be listed again as allowed.

  With ``[auth]`` and an empty or missing ``[access]`` nobody gets in: the
  gate fails closed.

A sign-in is let in only when its identity provider says ``email_verified``
is true (the boolean or the text "true"); missing, empty, "no", "unverified"
and every other value are refused: an unverified address proves nothing
about who signed in. One exception, for Microsoft Entra ID, which never sends
``email_verified`` for work accounts: a token with no ``email_verified`` at
all and ``xms_edov`` true (Entra's optional claim "email domain owner
verified": the address's domain is verified by the user's tenant) counts as
verified. An ``email_verified`` that is present and not true is refused
whatever ``xms_edov`` says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import idna

from lib.config import ConfigError, read_secrets_file

ROLES = ("admin", "viewer", "open")
ACCESS_KEYS = ("allowed_emails", "allowed_domains", "admins")
# What st.login() needs: two keys of [auth] itself, and the default provider's three.
SIGN_IN_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
CALLBACK_PATH = "/oauth2callback"  # the one path where Streamlit takes the provider's answer

# A DNS label in ASCII: letters, digits and hyphens (an IDN in its xn-- form).
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Actor:
    """Who is acting: what the store records as the author of a change."""

    email: str | None
    name: str | None
    role: str  # "admin" | "viewer" | "open"

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")

    @property
    def can_edit(self) -> bool:
        """Admins edit; so does everyone in open mode (no sign-in configured, local use)."""
        return self.role in ("admin", "open")

    @property
    def can_see_people(self) -> bool:
        """Names and emails of users (personal data): admins, and everyone in open mode (no sign-in
        configured); viewers see counts and costs only."""
        return self.role in ("admin", "open")

    @property
    def label(self) -> str:
        """How the actor is named in the audit log and the sidebar."""
        if self.role == "open":
            return "open access (no sign-in)"
        return self.email or self.name or "unknown"


OPEN_ACTOR = Actor(email=None, name=None, role="open")


@dataclass(frozen=True)
class AccessConfig:
    auth_enabled: bool = False
    allowed_emails: frozenset[str] = field(default_factory=frozenset)
    allowed_domains: frozenset[str] = field(default_factory=frozenset)
    admin_emails: frozenset[str] = field(default_factory=frozenset)
    admin_domains: frozenset[str] = field(default_factory=frozenset)

    @property
    def open(self) -> bool:
        return not self.auth_enabled

    @property
    def has_allow_list(self) -> bool:
        return bool(
            self.allowed_emails or self.allowed_domains or self.admin_emails or self.admin_domains
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    actor: Actor | None  # None exactly when not allowed
    reason: str
    shown_as: str  # who the person is signed in as ("" when signed out or open)

    @property
    def allowed_actor(self) -> Actor:
        """Who is let in; only for an allowed decision."""
        assert self.allowed and self.actor is not None, "not allowed: nobody to let in"
        return self.actor


# ------------------------------------------------------------------ parsing


def _ascii_lower(text: str) -> str:
    """Lower case for A-Z only: ``str.lower``/``casefold`` map other characters onto ASCII ones (the Kelvin
    sign onto "k", "ß" onto "ss", the "ﬀ" ligature onto "ff"), which would let a look-alike address match."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalize_email(value: Any) -> str | None:
    """The address with an ASCII-lower-case local part and an IDNA domain, or None when it is not exactly
    ``local@domain`` with a printable-ASCII local part."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.count("@") != 1 or any(c.isspace() for c in text):
        return None
    local, domain_text = text.split("@")
    domain = normalize_domain(domain_text)
    if not local or domain is None or not all(33 <= ord(c) <= 126 for c in local):
        return None
    return f"{_ascii_lower(local)}@{domain}"


def normalize_domain(value: Any) -> str | None:
    """A domain as ASCII in lower case (an internationalised one in its IDNA 2008 ``xn--`` form, without
    Unicode mapping; a leading ``@`` and a trailing dot dropped), or None when it is not one. Labels are
    separated by the ASCII full stop only: a look-alike dot (U+3002, U+FF0E, U+FF61) is refused."""
    if not isinstance(value, str):
        return None
    text = _ascii_lower(value.strip())
    if text.startswith("@"):
        text = text[1:]
    if text.endswith("."):
        text = text[:-1]
    if not text.isascii():
        # Only the ASCII full stop separates labels: idna.encode would also split on the ideographic and
        # full-width stops (U+3002, U+FF0E, U+FF61), so "ana@acme\u3002com" would become "acme.com".
        # Each label is encoded alone, and a label holding a look-alike dot is refused.
        try:
            text = ".".join(
                label if label.isascii() else idna.alabel(label).decode("ascii")
                for label in text.split(".")
            )
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    if not text or len(text) > 253:
        return None
    if not all(_LABEL.match(label) for label in text.split(".")):
        return None
    return text


def _list(section: Mapping[str, Any], key: str) -> list[str]:
    value = section.get(key, [])
    where = f"secrets.toml [access] {key}"
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of text")
    out = []
    for i, item in enumerate(value, 1):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}: entry {i} is not text")
        out.append(item.strip())
    return out


def _emails(items: list[str], where: str) -> frozenset[str]:
    out = set()
    for i, item in enumerate(items, 1):
        email = normalize_email(item)
        if email is None:
            raise ConfigError(
                f"{where}: entry {i} ({item!r}) is not an email address like ana@acme.com"
            )
        out.add(email)
    return frozenset(out)


def _domains(items: list[str], where: str) -> frozenset[str]:
    out = set()
    for i, item in enumerate(items, 1):
        if "*" in item:
            raise ConfigError(
                f"{where}: entry {i} ({item!r}): wildcards are not supported; "
                "list each domain exactly, e.g. acme.com and eu.acme.com"
            )
        domain = normalize_domain(item)
        if domain is None:
            raise ConfigError(f"{where}: entry {i} ({item!r}) is not a domain like acme.com")
        out.add(domain)
    return frozenset(out)


def load_access_config(secrets: Mapping[str, Any] | None = None) -> AccessConfig:
    """The access rules from ``secrets`` (default: the secrets file). Raises ConfigError naming a bad key."""
    if secrets is None:
        secrets = read_secrets_file()
    auth = secrets.get("auth")
    if auth is not None and not isinstance(auth, Mapping):
        raise ConfigError("secrets.toml: [auth] must be a table")
    # A present [auth] table, even an empty one, means sign-in was wanted: it is checked, never read as
    # "no sign-in" (which would run the dashboard open, everyone an editor).
    auth_enabled = auth is not None
    if auth is not None:
        check_sign_in_settings(auth)
    section = secrets.get("access", {}) or {}
    if not isinstance(section, Mapping):
        raise ConfigError("secrets.toml: [access] must be a table")
    unknown = sorted(set(section) - set(ACCESS_KEYS))
    if unknown:
        raise ConfigError(
            f"secrets.toml [access]: unknown key {unknown[0]!r} (known: {', '.join(ACCESS_KEYS)})"
        )
    emails = _emails(_list(section, "allowed_emails"), "secrets.toml [access] allowed_emails")
    domains = _domains(_list(section, "allowed_domains"), "secrets.toml [access] allowed_domains")
    admin_emails: set[str] = set()
    admin_domains: set[str] = set()
    for i, item in enumerate(_list(section, "admins"), 1):
        if "@" in item.lstrip("@"):
            email = normalize_email(item)
            if email is None:
                raise ConfigError(
                    f"secrets.toml [access] admins: entry {i} ({item!r}) is not an email address "
                    "like ana@acme.com"
                )
            admin_emails.add(email)
        else:
            admin_domains |= _domains([item], f"secrets.toml [access] admins (entry {i})")
    return AccessConfig(
        auth_enabled, emails, domains, frozenset(admin_emails), frozenset(admin_domains)
    )


def check_sign_in_settings(auth: Mapping[str, Any]) -> None:
    """Raise ConfigError naming every key of ``[auth]`` that sign-in needs and lacks (missing, empty or not
    text), or a ``redirect_uri`` Streamlit would never answer. Streamlit itself checks these only when
    someone presses Sign in, and then fails with an exception; the gate checks them first and stays closed.
    """
    default = auth.get("default")
    provider = default if isinstance(default, Mapping) else {}

    def usable(value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    missing = [k for k in SIGN_IN_KEYS if not usable(auth.get(k))]
    missing += [k for k in PROVIDER_KEYS if not usable(provider.get(k, auth.get(k)))]
    if missing:
        raise ConfigError(
            f"secrets.toml [auth]: sign-in is not configured: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing or empty; sign-in needs redirect_uri, "
            "cookie_secret (a long random text that signs the session cookie), client_id, client_secret "
            "and server_metadata_url (or remove the [auth] table for open local use)"
        )
    redirect = str(auth["redirect_uri"]).strip()
    if not redirect.replace("{port}", "0").split("?", 1)[0].endswith(CALLBACK_PATH):
        raise ConfigError(
            f"secrets.toml [auth] redirect_uri: must end in {CALLBACK_PATH} (the address the identity "
            "provider sends the browser back to, e.g. https://licenses.acme.com/oauth2callback)"
        )


# ----------------------------------------------------------------- deciding


def _get(user: Any, key: str) -> Any:
    if user is None:
        return None
    if isinstance(user, Mapping):
        return user.get(key)
    getter = getattr(user, "get", None)
    if callable(getter):
        try:
            return getter(key)
        except Exception:  # noqa: BLE001 - a proxy that refuses .get: fall back to attributes
            pass
    return getattr(user, key, None)


def _is_true(value: Any) -> bool:
    """Only ``true`` (the boolean, or the text "true" in any case) confirms a claim; missing, None, "", "yes",
    "no", 1, "unverified" and everything else do not."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def email_verified(user: Mapping[str, Any] | Any) -> bool:
    """Whether the identity provider vouches for the address: ``email_verified`` true, or (Microsoft Entra ID)
    no ``email_verified`` and ``xms_edov`` true."""
    claim = _get(user, "email_verified")
    if claim is not None:
        return _is_true(claim)
    return _is_true(_get(user, "xms_edov"))


def decide(user: Mapping[str, Any] | Any, config: AccessConfig) -> Decision:
    """Whether the person ``st.user`` describes may see the dashboard, and in which role."""
    if not config.auth_enabled:
        return Decision(
            True,
            OPEN_ACTOR,
            "open: no [auth] section in secrets.toml, so anyone who can reach the app may use and edit it",
            "",
        )
    if not _get(user, "is_logged_in"):
        return Decision(False, None, "sign in", "")
    raw_email = _get(user, "email")
    name = _get(user, "name")
    name = str(name) if name not in (None, "") else None
    shown = (
        str(raw_email).strip()
        if isinstance(raw_email, str) and raw_email.strip()
        else (name or "an account without an email address")
    )
    email = normalize_email(raw_email)
    if email is None:
        return Decision(
            False,
            None,
            "your sign-in did not give a usable email address, so access cannot be checked",
            shown,
        )
    if not email_verified(user):
        return Decision(
            False,
            None,
            "this email address is not verified: your identity provider did not send "
            "email_verified = true (nor, from Microsoft Entra ID, xms_edov = true)",
            shown,
        )
    domain = email.rsplit("@", 1)[1]
    if email in config.admin_emails or domain in config.admin_domains:
        why = (
            "listed as an admin" if email in config.admin_emails else f"an admin by domain {domain}"
        )
        return Decision(True, Actor(email, name, "admin"), why, shown)
    if email in config.allowed_emails or domain in config.allowed_domains:
        why = (
            "on the allow-list" if email in config.allowed_emails else f"allowed by domain {domain}"
        )
        return Decision(True, Actor(email, name, "viewer"), why, shown)
    if not config.has_allow_list:
        return Decision(
            False,
            None,
            "no one is allowed yet: the [access] section of secrets.toml is empty",
            shown,
        )
    return Decision(
        False,
        None,
        "this account is not on the dashboard's allow-list; ask an admin for access",
        shown,
    )
