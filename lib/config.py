"""Settings for the Truto connection, from ``.streamlit/secrets.toml`` and the environment.

``[truto]`` in ``secrets.toml`` holds ``api_token``, ``base_url``,
``integrated_account_ids`` and ``tenant_id`` (and the optional tuning keys
below). The environment wins: ``TRUTO_API_TOKEN``, ``TRUTO_BASE_URL``,
``TRUTO_INTEGRATED_ACCOUNT_IDS`` (comma-separated), ``TRUTO_TENANT_ID``, and
``TRUTO_<KEY>`` for every other key.

The token is kept in a :class:`Secret`, which never shows its value in
``str``/``repr``/f-strings and refuses to be pickled, so it cannot reach a log,
a page, a cache file or an export by accident.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lib.errors import DashboardError
from lib.integrations import integration_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRETS_PATH = PROJECT_ROOT / ".streamlit" / "secrets.toml"
# The command line (``python -m lib``) reads this file instead when the variable is set (jobs, tests).
SECRETS_FILE_ENV = "DASHBOARD_SECRETS_FILE"
DEFAULT_BASE_URL = "https://api.truto.one"


# ------------------------------------------------------------------- URLs

_SECRET_QUERY_KEYS = re.compile(r"(?i)((?:^|[?&;])(?:password|sslpassword|passfile|sslkey)=)[^&;]*")


def redact_url(url: Any) -> str:
    """The URL with every password hidden (safe to print or log).

    Done by hand, not by a URL parser: the credentials are everything before the authority's LAST
    ``@`` (a password may hold an unencoded ``@``), and query keys such as ``password=`` are masked
    too. Text that is not a URL at all is not echoed.
    """
    text_url = str(url)
    head, sep, rest = text_url.partition("://")
    if not sep:
        return "(not a URL; not shown)"
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        creds, _, host = authority.rpartition("@")
        user = creds.split(":", 1)[0]
        authority = f"{user}:***@{host}" if ":" in creds else f"{user}@{host}"
    return (
        f"{head}://{authority}{slash}{_SECRET_QUERY_KEYS.sub(lambda m: m.group(1) + '***', path)}"
    )


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(DashboardError, ValueError):
    """A setting has a value the dashboard cannot use; the message names the setting."""


class Secret:
    """A string that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled or cached")

    def digest(self) -> str:
        """A one-way fingerprint, for cache keys."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Settings:
    api_token: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    integrated_account_ids: tuple[str, ...] = ()
    tenant_id: str | None = None
    # Microsoft 365 lists licenses per product; which ones to ask for.
    products: tuple[str, ...] = ("azure_active_directory",)
    ignore_remote_data: bool = True
    page_limit: int | None = 100  # `limit` sent with each list call; None (empty): Truto's default
    account_page_limit: int | None = 500  # `limit` for the integrated-account list
    max_pages: int = 1000  # per listing; more is an error for that account
    max_attempts: int = 5  # per request, first try included
    max_total_wait: float = 120.0  # seconds of retry waiting per request
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0  # per socket read; the deadlines below bound the whole
    request_deadline: float = 180.0  # seconds for one HTTP exchange: connect, headers and body
    account_deadline: float = 900.0  # seconds for all of one account's requests, waits included
    fetch_deadline: float = 2700.0  # seconds for a whole fetch (fits an hourly sync)
    max_response_bytes: int = 64 * 1024 * 1024  # one answer (page), once decompressed
    allow_insecure_http: bool = False  # http:// to a host that is not loopback (the token in clear)
    token_rate_limit: int = 500  # requests per window for the token
    account_rate_limit: int = 50  # requests per window per integrated account
    rate_window: float = 10.0  # seconds
    max_workers: int = (
        64  # accounts fetched at once (waiting on the pacing costs a thread, little else)
    )
    # Integrations whose available_quantity means seats *remaining*, not bought.
    remaining_seats_integrations: tuple[str, ...] = ()
    # Users (who holds which seat, and when they were last active), listed beside the licenses.
    fetch_users: bool = True
    users_off_integrations: tuple[str, ...] = ()  # integrations whose users are not listed
    # Billing periods (ClickUp, DocuSign, Zoom), listed beside the licenses: contracts prefilled.
    fetch_billing: bool = True
    demo: bool = False  # True: no token configured, served by the emulator
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_token(self) -> bool:
        return bool(self.api_token)

    def fingerprint(self) -> str:
        """A key that differs whenever the data fetched could differ; holds no secret."""
        parts = []
        for f in dataclasses.fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = value.digest()
            parts.append(f"{f.name}={value!r}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]

    def reports_remaining(self, integration: str | None) -> bool:
        key = integration_key(integration)
        return any(integration_key(n) == key for n in self.remaining_seats_integrations)

    def fetches_users(self, integration: str | None) -> bool:
        """Whether the users of an account of this integration are listed (seat activity)."""
        key = integration_key(integration)
        return self.fetch_users and not any(
            integration_key(n) == key for n in self.users_off_integrations
        )


# key -> (kind, environment variable)
_KEYS: dict[str, str] = {
    "api_token": "secret",
    "base_url": "url",
    "integrated_account_ids": "ids",
    "tenant_id": "text",
    "products": "products",
    "ignore_remote_data": "bool",
    "page_limit": "optional_int",
    "account_page_limit": "optional_int",
    "max_pages": "int",
    "max_attempts": "int",
    "max_total_wait": "float",
    "backoff_base": "float",
    "backoff_max": "float",
    "connect_timeout": "float",
    "read_timeout": "float",
    "request_deadline": "float",
    "account_deadline": "float",
    "fetch_deadline": "float",
    "max_response_bytes": "int",
    "allow_insecure_http": "bool",
    "token_rate_limit": "int",
    "account_rate_limit": "int",
    "rate_window": "float",
    "max_workers": "int",
    "remaining_seats_integrations": "names",
    "fetch_users": "bool",
    "users_off_integrations": "names",
    "fetch_billing": "bool",
}


DEFAULT_CACHE_TTL_MINUTES = 15.0


def cache_ttl_seconds(
    env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None
) -> float:
    """How long a dashboard process keeps what it read before reading the store again.

    ``DASHBOARD_CACHE_TTL_MINUTES`` (environment) or ``[dashboard] cache_ttl_minutes`` (secrets.toml);
    default 15 minutes. A Refresh reads anew at once, whatever this says.
    """
    env = os.environ if env is None else env
    if secrets is None:
        secrets = read_secrets_file()
    section = secrets.get("dashboard", {}) or {}
    if env.get("DASHBOARD_CACHE_TTL_MINUTES", "").strip():
        raw, where = env["DASHBOARD_CACHE_TTL_MINUTES"], "DASHBOARD_CACHE_TTL_MINUTES"
    elif "cache_ttl_minutes" in section:
        raw, where = section["cache_ttl_minutes"], "secrets.toml [dashboard] cache_ttl_minutes"
    else:
        return DEFAULT_CACHE_TTL_MINUTES * 60
    return _parse("cache_ttl_minutes", "float", raw, where) * 60


def env_name(key: str) -> str:
    return "TRUTO_" + key.upper()


def read_secrets_file(path: Path | None = None) -> dict[str, Any]:
    """The whole ``secrets.toml`` as a dict ({} when there is none).

    Default: ``DASHBOARD_SECRETS_FILE`` when set, else ``.streamlit/secrets.toml``.
    """
    if path is None and os.environ.get(SECRETS_FILE_ENV, "").strip():
        path = Path(os.environ[SECRETS_FILE_ENV].strip())
    path = Path(path) if path is not None else DEFAULT_SECRETS_PATH
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML ({exc})") from None


def _as_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"{where}: expected a list or a comma-separated string")
    out = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise ConfigError(f"{where}: entry {i} is not text")
        item = item.strip()
        if not item:
            raise ConfigError(f"{where}: entry {i} is empty")
        out.append(item)
    return out


def _parse(key: str, kind: str, value: Any, where: str) -> Any:
    if kind == "secret":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text")
        value = value.strip()
        if value and not all(33 <= ord(ch) <= 126 for ch in value):
            # It goes into an HTTP header: a line break or non-ASCII character would fail there, and the
            # failure would quote it. Say what is wrong without showing the value.
            raise ConfigError(
                f"{where}: the token holds spaces, line breaks or non-ASCII characters "
                "(value not shown); paste it again"
            )
        return Secret(value) if value else None
    if kind == "url":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a URL")
        url = value.strip().rstrip("/")
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError:
            raise ConfigError(
                f"{where}: {shown!r} is not an http(s) URL such as {DEFAULT_BASE_URL}"
            ) from None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise ConfigError(
                f"{where}: {shown!r} is not an http(s) URL such as {DEFAULT_BASE_URL}"
            )
        if "@" in parts.netloc:
            raise ConfigError(
                f"{where}: {shown!r} holds a user name or password; give the address only "
                "(the API token is the credential)"
            )
        return url
    if kind == "ids":
        ids = _as_list(value, where)
        seen = set()
        for i, item in enumerate(ids, 1):
            if item in seen:
                raise ConfigError(f"{where}: entry {i} ({item}) is listed twice")
            seen.add(item)
        return tuple(ids)
    if kind == "names":
        return tuple(_as_list(value, where)) if value not in ("", None) else ()
    if kind == "products":
        products = _as_list(value, where)
        from lib.integrations import MICROSOFT_365_PRODUCTS

        for p in products:
            if p not in MICROSOFT_365_PRODUCTS:
                raise ConfigError(
                    f"{where}: {p!r} is not a Microsoft 365 product; use "
                    + " or ".join(MICROSOFT_365_PRODUCTS)
                )
        return tuple(products)
    if kind == "text":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text")
        value = value.strip()
        if not value:
            raise ConfigError(f"{where}: is empty")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: {value!r} is not true or false")
    if kind in ("int", "optional_int"):
        if kind == "optional_int" and (value is None or str(value).strip() == ""):
            return None
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a whole number") from None
        if number < 1:
            raise ConfigError(f"{where}: must be at least 1, got {number}")
        return number
    if kind == "float":
        try:
            if isinstance(value, bool):
                raise ValueError
            amount = float(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a number") from None
        if not amount > 0 or amount == float("inf"):
            raise ConfigError(f"{where}: must be a positive number, got {value!r}")
        return amount
    raise AssertionError(kind)


def load_settings(
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, Any] | None = None,
    secrets_path: Path | None = None,
) -> Settings:
    """Settings from ``secrets`` (or the secrets file) overlaid with ``env``.

    Raises :class:`ConfigError` naming the first bad setting.
    """
    env = os.environ if env is None else env
    if secrets is None:
        secrets = read_secrets_file(secrets_path)
    section = secrets.get("truto", {}) or {}
    if not isinstance(section, Mapping):
        raise ConfigError("secrets.toml: [truto] must be a table")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(f"secrets.toml [truto]: unknown key {unknown[0]!r}")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, kind in _KEYS.items():
        name = env_name(key)
        if name in env and str(env[name]).strip() != "":
            raw, where = env[name], name
        elif key in section:
            raw, where = section[key], f"secrets.toml [truto] {key}"
        else:
            continue
        parsed = _parse(key, kind, raw, where)
        if parsed is not None:
            values[key] = parsed
            sources[key] = where
    base_url = values.get("base_url", DEFAULT_BASE_URL)
    if (
        urlsplit(base_url).scheme == "http"
        and not _is_loopback(urlsplit(base_url).hostname)
        and not values.get("allow_insecure_http", False)
    ):
        raise ConfigError(
            f"{sources.get('base_url', 'base_url')}: {redact_url(base_url)!r} is plain http to a host "
            "that is not this machine, so the API token would travel unencrypted; use https, or set "
            "allow_insecure_http = true if the network is trusted"
        )
    if values.get("backoff_max", 20.0) < values.get("backoff_base", 0.5):
        raise ConfigError(
            f"{sources.get('backoff_max', 'backoff_max')}: must not be below backoff_base"
        )
    values["demo"] = "api_token" not in values
    return Settings(**values, sources=sources)
