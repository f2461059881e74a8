"""Alert delivery: email over SMTP and a Slack-compatible webhook.

Settings live in ``secrets.toml``::

    [alerts.email]
    host = "smtp.example.org"
    port = 587                       # default: 587 with STARTTLS, else 25
    starttls = true                  # default true
    sender = "licenses@example.org"
    recipients = ["it@example.org", "finance@example.org"]
    username = "licenses@example.org"   # default: the sender (used only with a password)
    password = "..."                 # a secret: never logged, shown or put in an error
    timeout = 10                     # seconds

    [alerts.webhook]
    url = "https://hooks.example.org/services/..."   # a secret too: the URL is the credential
    timeout = 10

Messages are built from plain text (:class:`lib.analytics.digest.Notice`) that holds
vendor names, so every channel escapes it for its own markup: the HTML part of an
email is HTML-escaped, and Slack text escapes ``&``, ``<`` and ``>`` as Slack
documents, so ``<!channel>``, ``<@U123>`` and ``<http://x|y>`` arrive as text.
No vendor text goes into a mail header (the subject is ours).

Delivery never raises: :func:`send_email` and :func:`post_webhook` return a
:class:`DeliveryResult`, so a failure is recorded and retried on the next sync.
"""

from __future__ import annotations

import html
import smtplib
import ssl
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import requests

from lib.analytics.alerts import Alert
from lib.analytics.digest import Notice, alerts_notice
from lib.config import Secret
from lib.jobs.channels import (
    DEFAULT_TIMEOUT,
    EmailSettings,
    WebhookSettings,
)

PRODUCT = "License utilization dashboard"


# --------------------------------------------------------------- messages


def _as_notice(content: Notice | Sequence[Alert]) -> Notice:
    return content if isinstance(content, Notice) else alerts_notice(list(content))


def plain_text(notice: Notice) -> str:
    """The message as plain text (the email's text part and the webhook's fallback before
    escaping)."""
    lines = [notice.title, "=" * min(len(notice.title), 72), ""]
    if notice.summary:
        lines += [notice.summary, ""]
    for section in notice.sections:
        lines += [section.heading, "-" * min(len(section.heading), 72)]
        if not section.items:
            lines.append(section.empty)
        for head, detail in section.items:
            lines.append(f"* {head}")
            if detail:
                lines.append(f"  {detail}")
        lines.append("")
    lines.append(f"Sent by the {PRODUCT}.")
    return "\n".join(lines) + "\n"


def html_text(notice: Notice) -> str:
    """The message as HTML; every piece of text is HTML-escaped (quotes included)."""
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html><body>", f"<h2>{e(notice.title)}</h2>"]
    if notice.summary:
        parts.append(f"<p>{e(notice.summary)}</p>")
    for section in notice.sections:
        parts.append(f"<h3>{e(section.heading)}</h3>")
        if not section.items:
            parts.append(f"<p>{e(section.empty)}</p>")
            continue
        parts.append("<ul>")
        for head, detail in section.items:
            parts.append(
                f"<li><strong>{e(head)}</strong>" + (f"<br>{e(detail)}" if detail else "") + "</li>"
            )
        parts.append("</ul>")
    parts.append(f"<p>Sent by the {e(PRODUCT)}.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def email_message(
    content: Notice | Sequence[Alert], settings: EmailSettings, now: datetime | None = None
) -> EmailMessage:
    """A multipart/alternative message: plain text and HTML, from ``settings.sender`` to its
    recipients."""
    notice = _as_notice(content)
    msg = EmailMessage()
    msg["Subject"] = _header_safe(notice.title)
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients)
    msg["Date"] = formatdate((now or datetime.now(UTC)).timestamp(), usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(plain_text(notice))
    msg.add_alternative(html_text(notice), subtype="html")
    return msg


def _header_safe(text: str) -> str:
    return " ".join("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).split())


def slack_escape(text: str) -> str:
    """Text for Slack: ``&``, ``<``, ``>`` as ``&amp;``, ``&lt;``, ``&gt;`` (Slack's own rule),
    so no
    mention, channel ping or link can be formed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SLACK_SECTION_LIMIT = 2900  # Slack allows 3000 characters per section text
_SLACK_HEADER_LIMIT = 150
_SLACK_MAX_ITEMS = 40  # 50 blocks per message, some for headers and dividers


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_escaped(text: str, limit: int) -> str:
    """Escape, then shorten without splitting an entity such as ``&lt;``."""
    escaped = slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    out, size = [], 0
    for ch in text:
        piece = slack_escape(ch)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def slack_payload(content: Notice | Sequence[Alert]) -> dict[str, Any]:
    """Slack-compatible JSON: ``text`` (the plain-text fallback, escaped) and ``blocks`` in
    mrkdwn."""
    notice = _as_notice(content)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(notice.title, _SLACK_HEADER_LIMIT)},
        }
    ]
    if notice.summary:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _cut_escaped(notice.summary, _SLACK_SECTION_LIMIT),
                },
            }
        )
    shown = 0
    left = sum(len(s.items) for s in notice.sections)
    for section in notice.sections:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{_cut_escaped(section.heading, 200)}*"},
            }
        )
        if not section.items:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(section.empty)}}
            )
        for head, detail in section.items:
            if shown >= _SLACK_MAX_ITEMS:
                break
            text = f"*{_cut_escaped(head, 500)}*"
            if detail:
                text += "\n" + _cut_escaped(detail, _SLACK_SECTION_LIMIT - len(text) - 1)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
            shown += 1
            left -= 1
    if left > 0:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"…and {left} more; see the Alerts page."}],
            }
        )
    return {
        "text": _cut_escaped(plain_text(notice), 3000),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


# --------------------------------------------------------------- delivery


@dataclass(frozen=True)
class DeliveryResult:
    """How one delivery went. ``error`` is for people and logs: it never holds a secret."""

    channel: str
    ok: bool
    error: str = ""
    attempted_at: datetime | None = None

    def __repr__(self) -> str:
        return f"DeliveryResult(channel={self.channel!r}, ok={self.ok!r}, error={self.error!r})"


def _scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def send_email(
    msg: EmailMessage, settings: EmailSettings, ssl_context: ssl.SSLContext | None = None
) -> DeliveryResult:
    """Send over SMTP: STARTTLS when configured (certificate checked), login when a password is
    configured. Returns a DeliveryResult; never raises for a network, TLS or server failure."""
    when = datetime.now(UTC)
    password = settings.password.reveal() if settings.password else None
    server = f"{settings.host}:{settings.port}"
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if password:
                smtp.login(settings.login, password)
            refused = smtp.send_message(
                msg, from_addr=settings.sender, to_addrs=list(settings.recipients)
            )
        if refused:
            who = ", ".join(sorted(refused))
            return DeliveryResult(
                "email", False, f"the SMTP server {server} refused recipients: {who}", when
            )
        return DeliveryResult("email", True, "", when)
    except smtplib.SMTPAuthenticationError as exc:
        error = (
            f"the SMTP server {server} refused the login for {settings.login} "
            f"(code {exc.smtp_code})"
        )
    except smtplib.SMTPNotSupportedError:
        error = f"the SMTP server {server} does not offer STARTTLS or AUTH as configured"
    except smtplib.SMTPResponseException as exc:
        reply = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        error = f"the SMTP server {server} answered {exc.smtp_code}: {_header_safe(reply)[:200]}"
    except smtplib.SMTPRecipientsRefused as exc:
        error = (
            f"the SMTP server {server} refused every recipient: {', '.join(sorted(exc.recipients))}"
        )
    except ssl.SSLError as exc:
        error = f"TLS with the SMTP server {server} failed ({exc.reason or type(exc).__name__})"
    except TimeoutError:
        error = f"the SMTP server {server} did not answer within {settings.timeout:g} seconds"
    except ConnectionRefusedError:
        error = f"could not connect to the SMTP server {server} (connection refused)"
    except (smtplib.SMTPException, OSError) as exc:
        error = f"sending through the SMTP server {server} failed ({type(exc).__name__})"
    return DeliveryResult("email", False, _scrub(error, password), when)


def post_webhook(
    payload: Mapping[str, Any], url: str | Secret | WebhookSettings, timeout: float | None = None
) -> DeliveryResult:
    """POST the JSON payload. 2xx is delivered; anything else is a failed DeliveryResult whose error
    names the host, never the URL's path (a webhook URL is its own credential)."""
    when = datetime.now(UTC)
    if isinstance(url, WebhookSettings):
        timeout = url.timeout if timeout is None else timeout
        url = url.url
    secret = url.reveal() if isinstance(url, Secret) else str(url)
    where = WebhookSettings(Secret(secret)).where if secret else "the webhook"
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        response = requests.post(
            secret,
            json=dict(payload),
            timeout=timeout,
            allow_redirects=False,
            headers={"User-Agent": PRODUCT},
        )
    except requests.exceptions.Timeout:
        return DeliveryResult(
            "webhook",
            False,
            f"the webhook at {where} did not answer within {timeout:g} seconds",
            when,
        )
    except requests.exceptions.ConnectionError:
        return DeliveryResult(
            "webhook", False, f"could not connect to the webhook at {where}", when
        )
    except (requests.exceptions.RequestException, ValueError) as exc:
        return DeliveryResult(
            "webhook",
            False,
            f"posting to the webhook at {where} failed ({type(exc).__name__})",
            when,
        )
    if 200 <= response.status_code < 300:
        return DeliveryResult("webhook", True, "", when)
    body = _header_safe(response.text[:200]) if response.text else ""
    error = f"the webhook at {where} answered HTTP {response.status_code}" + (
        f": {body}" if body else ""
    )
    path = urlsplit(secret).path
    return DeliveryResult(
        "webhook", False, _scrub(error, secret, path if len(path) > 8 else None), when
    )
