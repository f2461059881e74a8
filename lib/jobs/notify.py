"""Alert delivery: email over SMTP and a Slack-compatible webhook.

Settings live in ``secrets.toml``::

    [alerts.email]
    host = "smtp.example.org"
    port = 587                       # default: 587 with STARTTLS, 465 with implicit TLS, else 25
    starttls = true                  # default true
    implicit_tls = false             # true: TLS from the first byte (SMTPS, port 465)
    sender = "licenses@example.org"
    recipients = ["it@example.org", "finance@example.org"]
    username = "licenses@example.org"   # default: the sender (used only with a password)
    password = "..."                 # a secret: never logged, shown or put in an error
    allow_plaintext_login = false    # a password without TLS is refused unless true
    timeout = 10                     # seconds for the whole send, connecting included

    [alerts.webhook]
    url = "https://hooks.example.org/services/..."   # a secret too: the URL is the credential
    allow_insecure_http = false      # plain http:// to another host is refused unless true
    timeout = 10                     # seconds for the whole send

Messages are built from plain text (:class:`lib.analytics.digest.Notice`) that holds
vendor names, so every channel escapes it for its own markup: the HTML part of an
email is HTML-escaped, and the webhook's text is neutralised (:func:`chat_neutral`:
no mention, link or emphasis in Slack, Mattermost or Rocket.Chat) and then escapes
``&``, ``<`` and ``>`` as Slack documents, so ``<!channel>``, ``<@U123>`` and
``<http://x|y>`` arrive as text. No vendor text goes into a mail header (the subject
is ours).

A hostile or broken server cannot hold a send: the timeout is one deadline for the
whole of it (a watchdog shuts the socket down, :func:`lib.truto.transport.cut_off_after`),
and a failed webhook's answer is read only up to a few KB and kept only as its
status and a short reason with every part of the URL masked (:func:`scrub_url`).

Delivery never raises: :func:`send_email` and :func:`post_webhook` return a
:class:`DeliveryResult`, so a failure is recorded and retried on the next sync.
"""

from __future__ import annotations

import html
import json
import re
import smtplib
import socket
import ssl
import unicodedata
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import requests
import urllib3

from lib.analytics.alerts import Alert
from lib.analytics.digest import Notice, alerts_notice
from lib.config import Secret
from lib.jobs.channels import (
    DEFAULT_TIMEOUT,
    EmailSettings,
    WebhookSettings,
)
from lib.truto.text import clean_text
from lib.truto.transport import connect_within, cut_off_after, make_session

PRODUCT = "License utilization dashboard"


# --------------------------------------------------------------- messages


def _as_notice(content: Notice | Sequence[Alert]) -> Notice:
    return content if isinstance(content, Notice) else alerts_notice(list(content))


def plain_text(notice: Notice, text: Callable[[str], str] = str) -> str:
    """The message as plain text (the email's text part and the webhook's fallback before
    escaping); ``text`` is applied to every piece of the notice's text (not to the layout)."""
    title = text(notice.title)
    lines = [title, "=" * min(len(title), 72), ""]
    if notice.summary:
        lines += [text(notice.summary), ""]
    for section in notice.sections:
        heading = text(section.heading)
        lines += [heading, "-" * min(len(heading), 72)]
        if not section.items:
            lines.append(text(section.empty))
        for head, detail in section.items:
            lines.append(f"* {text(head)}")
            if detail:
                lines.append(f"  {text(detail)}")
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


# The webhook's text is read as Slack mrkdwn by Slack and as Markdown by Mattermost and Rocket.Chat
# (which ping on a bare @channel, @here, @all or @user and link bare URLs). No escape works in all
# three (Slack shows a backslash as is), so the characters that make markup are replaced by ones
# that look the same and mean nothing: @ by a full-width @ (no mention, no email link); * ~ ` by
# look-alikes, and _ unless inside a word (no emphasis, strike-through, code, or Mattermost's
# ~channel link); the : of :// and a dot between letters by look-alikes (no bare link: neither
# http://x nor example.org); and an invisible space after # before a word (no channel link) and
# after ] before ( [ or : (no Markdown link or image).
_CHAT_CHARS = str.maketrans({"@": "\uff20", "*": "\u2217", "~": "\u223c", "`": "\u02cb"})
_CHAT_RULES = (
    (re.compile(r"(?<![^\W_])_|_(?![^\W_])"), "\u02cd"),
    (re.compile(r":(?=//)"), "\u2236"),
    (re.compile(r"(?<=[^\W_])\.(?=[^\W\d_])"), "\u2024"),
    (re.compile(r"#(?=\w)"), "#\u200b"),
    (re.compile(r"\](?=[(\[:])"), "]\u200b"),
)


def chat_neutral(text: str) -> str:
    """Vendor text that no Slack-compatible chat turns into a mention, a link or emphasis (see
    above); :func:`slack_escape` still applies after it."""
    text = text.translate(_CHAT_CHARS)
    for pattern, replacement in _CHAT_RULES:
        text = pattern.sub(replacement, text)
    return text


_SLACK_SECTION_LIMIT = 2900  # Slack allows 3000 characters per section text
_SLACK_HEADER_LIMIT = 150
_SLACK_MAX_ITEMS = 40  # 50 blocks per message, some for headers and dividers


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_escaped(text: str, limit: int, neutral: bool = True) -> str:
    """Neutralise (:func:`chat_neutral`, unless done already) and escape, then shorten without
    splitting an entity such as ``&lt;``."""
    if neutral:
        text = chat_neutral(text)
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
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": _cut_escaped(section.empty, _SLACK_SECTION_LIMIT),
                    },
                }
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
        "text": _cut_escaped(plain_text(notice, chat_neutral), 3000, neutral=False),
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


# ------------------------------------------------------------------- email


class _Held:
    """What the watchdog shuts down for an SMTP connection: a duplicate of its socket. Shutting it
    down ends any read on the connection, before TLS wraps it and after."""

    def __init__(self, sock: socket.socket):
        self.sock = sock.dup()


class _SMTP(smtplib.SMTP):
    """smtplib's client whose connection is watched by ``exchange`` from the moment it is made, so
    the whole send (greeting, TLS handshake, every reply) ends at one deadline; with ``tls`` the
    connection is TLS from its first byte (SMTPS, as :class:`smtplib.SMTP_SSL`)."""

    def __init__(self, exchange: Any, timeout: float, tls: ssl.SSLContext | None = None):
        self._exchange, self._tls = exchange, tls
        self._held: _Held | None = None
        super().__init__(timeout=timeout)

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None):
        # the name STARTTLS checks the certificate against (set by __init__ in smtplib)
        self._host = host
        return super().connect(host, port, source_address)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # as smtplib's own, but within the deadline however many addresses the host has
        sock = connect_within(self._exchange, (host, port), timeout, self.source_address)
        self._held = _Held(sock)
        self._exchange.attach(self._held)
        if self._exchange.cut_off:  # the deadline passed while connecting
            sock.close()
            raise TimeoutError
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=host)
        return sock

    def close(self) -> None:
        super().close()
        if self._held is not None:
            self._held.sock.close()
            self._held = None


def _smtp_failure(exc: BaseException, settings: EmailSettings, server: str) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"the SMTP server {server} refused the login for {settings.login} "
            f"(code {exc.smtp_code})"
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"the SMTP server {server} does not offer STARTTLS or AUTH as configured"
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        # the password masked before the reply is cut: a cut through it would leave its start
        reply = _scrub(reply, settings.password.reveal() if settings.password else None)
        return f"the SMTP server {server} answered {exc.smtp_code}: {_header_safe(reply)[:200]}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return (
            f"the SMTP server {server} refused every recipient: {', '.join(sorted(exc.recipients))}"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS with the SMTP server {server} failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, TimeoutError):
        return f"the SMTP server {server} did not answer within {settings.timeout:g} seconds"
    if isinstance(exc, ConnectionRefusedError):
        return f"could not connect to the SMTP server {server} (connection refused)"
    return f"sending through the SMTP server {server} failed ({type(exc).__name__})"


def send_email(
    msg: EmailMessage, settings: EmailSettings, ssl_context: ssl.SSLContext | None = None
) -> DeliveryResult:
    """Send over SMTP: TLS as configured (STARTTLS, or implicit TLS from the first byte; the
    certificate checked), login when a password is configured (never over a connection without TLS
    unless ``allow_plaintext_login``). The whole send, connecting included, ends within
    ``settings.timeout``. Returns a DeliveryResult; never raises for a network, TLS or server
    failure."""
    when = datetime.now(UTC)
    password = settings.password.reveal() if settings.password else None
    server = f"{settings.host}:{settings.port}"
    if settings.plaintext_login and not settings.allow_plaintext_login:
        return DeliveryResult(
            "email",
            False,
            f"not sent: the password for the SMTP server {server} would travel without TLS "
            "(set starttls = true or implicit_tls = true, or allow_plaintext_login = true)",
            when,
        )
    context = ssl_context or ssl.create_default_context()
    with cut_off_after(settings.timeout) as exchange:
        smtp = _SMTP(exchange, settings.timeout, context if settings.implicit_tls else None)
        try:
            smtp.connect(settings.host, settings.port)
            smtp.ehlo()
            if settings.starttls and not settings.implicit_tls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if password:
                smtp.login(settings.login, password)
            refused = smtp.send_message(
                msg, from_addr=settings.sender, to_addrs=list(settings.recipients)
            )
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass  # the message was accepted: a lost goodbye does not undo it
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            error = (
                f"the SMTP server {server} did not finish within {settings.timeout:g} seconds "
                "(the timeout is for the whole send)"
                if exchange.cut_off
                else _smtp_failure(exc, settings, server)
            )
            return DeliveryResult("email", False, _scrub(error, password), when)
        finally:
            smtp.close()
    if refused:
        who = ", ".join(sorted(refused))
        return DeliveryResult(
            "email", False, f"the SMTP server {server} refused recipients: {who}", when
        )
    return DeliveryResult("email", True, "", when)


# ----------------------------------------------------------------- webhook

_REPLY_BYTES = 4096  # of a failed webhook's answer, at most this much is read (and decompressed)
_REASON_CHARS = 120  # and at most this much of it is kept, as the reason
_REASON_KEYS = ("error", "message", "detail", "error_description", "description", "reason")
_SHORTEST_MASKED = 3  # parts of the URL shorter than this are not masked (no credential is)
_TOKENISH = re.compile(r"[A-Za-z0-9_\-.~%+]{8,}")


def _url_parts(url: str) -> list[str]:
    """Every piece of the URL that may be (part of) its credential: the path and query, whole and
    each part (raw and percent-decoded), and any user or password."""
    parts = urlsplit(url)
    pieces = {parts.path, parts.query, parts.fragment, parts.username, parts.password}
    pieces |= {parts.path + "?" + parts.query} if parts.query else set()
    for segment in parts.path.split("/"):
        pieces |= {segment, unquote(segment)}
    for pair in re.split("[&;]", parts.query):
        key, _, value = pair.partition("=")
        pieces |= {pair, key, value, unquote_plus(key), unquote_plus(value)}
    return [p for p in pieces if p and len(p) >= _SHORTEST_MASKED]


def scrub_url(text: str, url: str) -> str:
    """``text`` with the URL and every part of its path and query (and any password in it) masked
    wherever they appear, in any letter case, and any token-like word found inside them (an echo
    of part of a token) masked too."""
    parts = _url_parts(url)
    for piece in sorted({p for p in (url, *parts) if p}, key=len, reverse=True):
        text = re.sub(re.escape(piece), "********", text, flags=re.IGNORECASE)
    hidden = " ".join(parts).lower()
    return _TOKENISH.sub(lambda m: "********" if m.group().lower() in hidden else m.group(), text)


def _read_reply(response: requests.Response) -> bytes:
    """At most _REPLY_BYTES of the answer's body, raw (never decompressed by the HTTP library);
    what could not be read is left out."""
    try:
        return response.raw.read(_REPLY_BYTES, decode_content=False) or b""
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
        return b""


def _reply_text(raw: bytes, encoding: str) -> str:
    """The body as text, gzip or deflate decoded only up to _REPLY_BYTES; another encoding is not
    read."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            raw = zlib.decompressobj(47).decompress(raw, _REPLY_BYTES)  # 47: gzip or zlib header
        except zlib.error:
            return ""
    elif encoding not in ("", "identity"):
        return ""
    return raw.decode("utf-8", "replace")


def _reason(text: str, secret: str) -> str:
    """A short reason from a failed webhook's answer: the JSON's error or message (Slack answers
    plain text such as ``invalid_token``, others JSON), else its first line; scrubbed of every part
    of the URL, then cut; nothing else of the answer is kept."""
    try:
        value: Any = json.loads(text)
    except (ValueError, RecursionError):
        value = text
    if isinstance(value, dict):
        picked = [value[k] for k in _REASON_KEYS if isinstance(value.get(k), str)]
        value = picked[0] if picked else ""
    if not isinstance(value, str):
        value = text if not isinstance(value, (list, dict)) else ""
    line = next((x.strip() for x in value.splitlines() if x.strip()), "")
    # Cleaned before it is scrubbed: cleaning drops NUL and bidi marks, so a token spliced with them
    # would come together only after a scrub that had not seen it.
    line = " ".join(scrub_url(clean_text(line), secret).split())
    return _cut(line, _REASON_CHARS)


def post_webhook(
    payload: Mapping[str, Any], url: str | Secret | WebhookSettings, timeout: float | None = None
) -> DeliveryResult:
    """POST the JSON payload. 2xx is delivered; anything else is a failed DeliveryResult whose error
    names the host, never the URL's path (a webhook URL is its own credential), with the status and
    a short, scrubbed reason. The whole send (connecting, posting, the answer) ends within
    ``timeout``; at most a few KB of the answer are read."""
    when = datetime.now(UTC)
    if isinstance(url, WebhookSettings):
        timeout = url.timeout if timeout is None else timeout
        url = url.url
    secret = url.reveal() if isinstance(url, Secret) else str(url)
    where = WebhookSettings(Secret(secret)).where if secret else "the webhook"
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    exchange = None
    try:
        with make_session(1) as session, cut_off_after(timeout) as exchange:
            with session.post(
                secret,
                json=dict(payload),
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                headers={"User-Agent": PRODUCT, "Accept-Encoding": "identity"},
            ) as response:
                status = response.status_code
                ok = 200 <= status < 300
                raw = b"" if ok else _read_reply(response)
                encoding = response.headers.get("Content-Encoding", "")
    except (requests.exceptions.RequestException, ValueError, OSError) as exc:
        if exchange is not None and exchange.cut_off:
            error = (
                f"the webhook at {where} did not finish within {timeout:g} seconds "
                "(the timeout is for the whole send)"
            )
        elif isinstance(exc, requests.exceptions.Timeout):
            error = f"the webhook at {where} did not answer within {timeout:g} seconds"
        elif isinstance(exc, requests.exceptions.ConnectionError):
            error = f"could not connect to the webhook at {where}"
        else:
            error = f"posting to the webhook at {where} failed ({type(exc).__name__})"
        return DeliveryResult("webhook", False, error, when)
    if ok:
        return DeliveryResult("webhook", True, "", when)
    reason = _reason(_reply_text(raw, encoding), secret)
    error = f"the webhook at {where} answered HTTP {status}" + (f": {reason}" if reason else "")
    return DeliveryResult("webhook", False, error, when)
