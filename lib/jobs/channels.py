"""Alert channel settings from ``secrets.toml`` (``[alerts.email]``, ``[alerts.webhook]``), checked
and explained when wrong; see :mod:`lib.jobs.notify` for the format."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lib.config import ConfigError, Secret, _is_loopback

DEFAULT_TIMEOUT = 10.0


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class EmailSettings:
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: Secret | None = None
    timeout: float = DEFAULT_TIMEOUT
    implicit_tls: bool = False  # TLS from the first byte (SMTPS, port 465) instead of STARTTLS
    allow_plaintext_login: bool = False  # a password over a connection without TLS

    @property
    def login(self) -> str:
        return self.username or self.sender

    @property
    def tls(self) -> bool:
        return self.implicit_tls or self.starttls

    @property
    def plaintext_login(self) -> bool:
        """The password would be sent without TLS (refused unless ``allow_plaintext_login``)."""
        return self.password is not None and not self.tls


@dataclass(frozen=True)
class WebhookSettings:
    url: Secret
    timeout: float = DEFAULT_TIMEOUT  # the whole send: connecting, posting and reading the answer

    @property
    def where(self) -> str:
        """The scheme and host, for messages: the path of a webhook URL is its credential."""
        parts = urlsplit(self.url.reveal())
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


@dataclass(frozen=True)
class AlertChannels:
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None


_EMAIL_KEYS = (
    "host",
    "port",
    "starttls",
    "implicit_tls",
    "sender",
    "recipients",
    "username",
    "password",
    "allow_plaintext_login",
    "timeout",
)
_WEBHOOK_KEYS = ("url", "timeout", "allow_insecure_http")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected an email address such as alerts@example.org")
    text = value.strip()
    local, _, domain = text.rpartition("@")
    if (
        _has_control(text)
        or any(ch in text for ch in ' ,;<>"()[]\\')
        or not local
        or not domain
        or "." not in domain
        or domain.startswith(".")
        or domain.endswith(".")
    ):
        raise ConfigError(f"{where}: {text!r} is not an email address such as alerts@example.org")
    return text


def _flag(section: Mapping[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {key}: {value!r} is not true or false")
    return value


def _timeout(section: Mapping[str, Any], where: str) -> float:
    value = section.get("timeout", DEFAULT_TIMEOUT)
    try:
        number = float("nan") if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if math.isnan(number):
        raise ConfigError(f"{where} timeout: {value!r} is not a number of seconds")
    if not math.isfinite(number) or not 0 < number <= 300:
        raise ConfigError(f"{where} timeout: must be between 0 and 300 seconds, got {value!r}")
    return number


def _section(
    secrets: Mapping[str, Any], name: str, keys: Sequence[str]
) -> Mapping[str, Any] | None:
    alerts = secrets.get("alerts") if isinstance(secrets, Mapping) else None
    if alerts is None:
        return None
    if not isinstance(alerts, Mapping):
        raise ConfigError("secrets.toml: [alerts] must be a table")
    section = alerts.get(name)
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"secrets.toml: [alerts.{name}] must be a table")
    unknown = sorted(set(section) - set(keys))
    if unknown:
        raise ConfigError(
            f"secrets.toml [alerts.{name}]: unknown key {unknown[0]!r} (known: {', '.join(keys)})"
        )
    return section


def email_settings(secrets: Mapping[str, Any]) -> EmailSettings | None:
    """``[alerts.email]`` checked (None when the section is absent). Raises ConfigError naming
    the key."""
    section = _section(secrets, "email", _EMAIL_KEYS)
    if section is None:
        return None
    where = "secrets.toml [alerts.email]"
    host = section.get("host")
    if not isinstance(host, str) or not host.strip() or _has_control(host) or " " in host.strip():
        raise ConfigError(
            f"{where} host: expected the SMTP server's host name, e.g. smtp.example.org"
        )
    implicit_tls = _flag(section, "implicit_tls", where)
    if implicit_tls and section.get("starttls") is True:
        raise ConfigError(
            f"{where}: implicit_tls and starttls are two ways to start TLS; set only one "
            "(implicit_tls = true for port 465, starttls = true for 587)"
        )
    starttls = _flag(section, "starttls", where, default=not implicit_tls)
    port = section.get("port", 465 if implicit_tls else 587 if starttls else 25)
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port.strip())
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"{where} port: {port!r} is not a port number (1 to 65535)")
    sender = _address(section.get("sender"), f"{where} sender")
    raw = section.get("recipients")
    if isinstance(raw, str):
        raw = [x for x in raw.split(",")]
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(f"{where} recipients: expected a list of email addresses")
    recipients: list[str] = []
    for i, item in enumerate(raw, 1):
        address = _address(item, f"{where} recipients entry {i}")
        if address.lower() in (r.lower() for r in recipients):
            raise ConfigError(f"{where} recipients entry {i}: {address!r} is listed twice")
        recipients.append(address)
    username = section.get("username")
    if username is not None and (
        not isinstance(username, str) or not username.strip() or _has_control(username)
    ):
        raise ConfigError(f"{where} username: expected text")
    password = section.get("password")
    if password is not None:
        if not isinstance(password, str):
            raise ConfigError(f"{where} password: expected text (value not shown)")
        if _has_control(password):
            raise ConfigError(
                f"{where} password: holds a line break or control character "
                "(value not shown); paste it again"
            )
        password = Secret(password) if password else None
    allow_plaintext = _flag(section, "allow_plaintext_login", where)
    if password and not (implicit_tls or starttls) and not allow_plaintext:
        raise ConfigError(
            f"{where} password: with starttls = false and no implicit_tls the password would be "
            "sent unencrypted; use starttls = true or implicit_tls = true, or set "
            "allow_plaintext_login = true if the network is trusted"
        )
    return EmailSettings(
        host=host.strip(),
        sender=sender,
        recipients=tuple(recipients),
        port=port,
        starttls=starttls,
        username=username.strip() if username else None,
        password=password,
        timeout=_timeout(section, where),
        implicit_tls=implicit_tls,
        allow_plaintext_login=allow_plaintext,
    )


def webhook_settings(secrets: Mapping[str, Any]) -> WebhookSettings | None:
    """``[alerts.webhook]`` checked (None when absent). The URL is kept as a Secret."""
    section = _section(secrets, "webhook", _WEBHOOK_KEYS)
    if section is None:
        return None
    where = "secrets.toml [alerts.webhook]"
    url = section.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where} url: expected the webhook's http(s) URL")
    url = url.strip()
    try:
        parts = urlsplit(url)
        ok = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and not _has_control(url)
            and " " not in url
        )
        parts.port  # noqa: B018  (raises for a bad port)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"{where} url: not an http(s) URL (value not shown)")
    if (
        parts.scheme == "http"
        and not _is_loopback(parts.hostname)
        and not _flag(section, "allow_insecure_http", where)
    ):
        raise ConfigError(
            f"{where} url: plain http to a host that is not this machine (value not shown), so the "
            "URL, which is the webhook's credential, would travel unencrypted; use https, or set "
            "allow_insecure_http = true if the network is trusted"
        )
    return WebhookSettings(Secret(url), _timeout(section, where))


def alert_channels(secrets: Mapping[str, Any]) -> AlertChannels:
    """Both channels from the secrets dict; a channel without its section is None."""
    return AlertChannels(email=email_settings(secrets), webhook=webhook_settings(secrets))
