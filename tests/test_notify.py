"""Alert delivery against real servers on loopback: an SMTP server (aiosmtpd) and an HTTP receiver.

Every message is asserted as received, byte for byte where it matters, and hostile vendor names
(``<script>``, ``<!channel>``, ``<http://x|y>``, ``=cmd``, CR/LF) are shown to arrive inert.
"""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import json
import socket
import ssl
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from lib.analytics.alerts import Alert
from lib.analytics.digest import Notice, Section
from lib.config import ConfigError, Secret
from lib.jobs.channels import (
    EmailSettings,
    WebhookSettings,
    alert_channels,
    email_settings,
    webhook_settings,
)
from lib.jobs.notify import (
    DeliveryResult,
    email_message,
    post_webhook,
    send_email,
    slack_escape,
    slack_payload,
)

PASSWORD = "s3cret-Pa55word-7f3a"
HOSTILE = "<script>alert(1)</script> <!channel> <@U123> <http://evil.example|click> =cmd & co"
NOW = dt.datetime(2026, 12, 2, 8, 30, tzinfo=dt.UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alerts():
    return [
        Alert(
            "under:github:gh-1::g-1",
            "under",
            "under_used",
            "info",
            f"Under-used: GitHub: {HOSTILE}",
            "12 of 40 seats assigned (30.0%), below 70%.",
        ),
        Alert(
            "acct:zoom:zm-2",
            "acct",
            "account_failed",
            "critical",
            "Zoom account zm-2 needs reauthorization",
            "Reconnect this account in Truto.",
        ),
    ]


# ---------------------------------------------------------------- SMTP server


class Recorder:
    def __init__(self, answer: str = "250 Message accepted for delivery"):
        self.envelopes = []
        self.answer = answer

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return self.answer


def make_cert(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def smtp_server(tmp_path):
    """Start aiosmtpd on 127.0.0.1: ``smtp_server(tls=False, password=None, answer=...)``."""
    started = []

    def start(tls: bool = False, password: str | None = None, answer: str | None = None):
        recorder = Recorder(answer) if answer else Recorder()
        kwargs = {}
        client_ctx = None
        if tls:
            cert, key = make_cert(tmp_path)
            server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_ctx.load_cert_chain(cert, key)
            kwargs.update(tls_context=server_ctx, require_starttls=True)
            client_ctx = ssl.create_default_context(cafile=str(cert))
        if password is not None:

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (
                    auth_data.login == b"alerts@example.org"
                    and auth_data.password == password.encode()
                )
                return AuthResult(success=ok, handled=False)  # False: the server answers 535

            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls)
        controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
        started.append(controller)
        return controller, recorder, client_ctx

    yield start
    for c in started:
        c.stop()


def settings(port: int, **overrides) -> EmailSettings:
    base = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "sender": "alerts@example.org",
        "recipients": ("it@example.org", "finance@example.org"),
        "timeout": 5.0,
    }
    base.update(overrides)
    return EmailSettings(**base)


EXPECTED_TEXT = f"""License alerts: 2 new (1 critical)
==================================

New alerts
----------
* [CRITICAL] Zoom account zm-2 needs reauthorization
  Reconnect this account in Truto.
* [INFO] Under-used: GitHub: {HOSTILE}
  12 of 40 seats assigned (30.0%), below 70%.

Sent by the License utilization dashboard.
"""

EXPECTED_HTML = """<!DOCTYPE html>
<html><body>
<h2>License alerts: 2 new (1 critical)</h2>
<h3>New alerts</h3>
<ul>
<li><strong>[CRITICAL] Zoom account zm-2 needs reauthorization</strong><br>\
Reconnect this account in Truto.</li>
<li><strong>[INFO] Under-used: GitHub: &lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt; \
&lt;@U123&gt; &lt;http://evil.example|click&gt; =cmd &amp; co</strong><br>\
12 of 40 seats assigned (30.0%), below 70%.</li>
</ul>
<p>Sent by the License utilization dashboard.</p>
</body></html>
"""


def received(recorder):
    (envelope,) = recorder.envelopes
    msg = email.message_from_bytes(envelope.content, policy=policy.default)
    return envelope, msg


def test_an_alert_email_arrives_with_both_parts_and_every_vendor_string_escaped(smtp_server):
    controller, recorder, _ = smtp_server()
    msg = email_message(alerts(), settings(controller.port), now=NOW)
    result = send_email(msg, settings(controller.port))
    assert result.ok and result.error == "" and result.channel == "email"
    envelope, got = received(recorder)
    assert envelope.mail_from == "alerts@example.org"
    assert envelope.rcpt_tos == ["it@example.org", "finance@example.org"]
    assert got["Subject"] == "License alerts: 2 new (1 critical)"
    assert got["From"] == "alerts@example.org"
    assert got["To"] == "it@example.org, finance@example.org"
    assert b"\r\nDate: Wed, 02 Dec 2026 08:30:00 +0000\r\n" in envelope.content
    assert got["Auto-Submitted"] == "auto-generated"
    assert got.get_content_type() == "multipart/alternative"
    text, html_part = got.iter_parts()
    assert text.get_content_type() == "text/plain" and html_part.get_content_type() == "text/html"
    # On the wire every line ends in CRLF, as SMTP requires.
    assert text.get_content() == EXPECTED_TEXT.replace("\n", "\r\n")
    assert html_part.get_content() == EXPECTED_HTML.replace("\n", "\r\n")
    assert "<script>" not in html_part.get_content() and "<!channel>" not in html_part.get_content()


def test_starttls_and_login_with_the_password_kept_secret(smtp_server):
    controller, recorder, client_ctx = smtp_server(tls=True, password=PASSWORD)
    s = settings(controller.port, starttls=True, password=Secret(PASSWORD))
    assert PASSWORD not in repr(s) and PASSWORD not in str(s)
    result = send_email(email_message(alerts(), s, now=NOW), s, ssl_context=client_ctx)
    assert result == DeliveryResult("email", True, "", result.attempted_at)
    _, got = received(recorder)
    assert got["Subject"] == "License alerts: 2 new (1 critical)"


def test_a_wrong_password_is_a_failed_result_that_does_not_show_it(smtp_server):
    controller, recorder, client_ctx = smtp_server(tls=True, password=PASSWORD)
    wrong = "wr0ng-" + PASSWORD
    s = settings(controller.port, starttls=True, password=Secret(wrong))
    result = send_email(email_message(alerts(), s), s, ssl_context=client_ctx)
    assert not result.ok
    assert result.error == (
        f"the SMTP server 127.0.0.1:{controller.port} refused the login for "
        "alerts@example.org (code 535)"
    )
    assert wrong not in repr(result) and recorder.envelopes == []


def test_an_untrusted_certificate_fails_without_raising(smtp_server):
    controller, _, _ = smtp_server(tls=True)
    s = settings(controller.port, starttls=True)
    result = send_email(email_message(alerts(), s), s)  # the system's trust store: not our cert
    assert not result.ok and result.error.startswith(
        f"TLS with the SMTP server 127.0.0.1:{controller.port} failed"
    )


def test_a_refused_connection_and_a_rejecting_server_are_failed_results(smtp_server):
    port = free_port()
    s = settings(port)
    result = send_email(email_message(alerts(), s), s)
    assert not result.ok
    assert (
        result.error
        == f"could not connect to the SMTP server 127.0.0.1:{port} (connection refused)"
    )
    controller, _, _ = smtp_server(answer="554 5.7.1 Message rejected as spam")
    s = settings(controller.port)
    result = send_email(email_message(alerts(), s), s)
    assert not result.ok
    assert result.error == (
        f"the SMTP server 127.0.0.1:{controller.port} answered 554: 5.7.1 Message rejected as spam"
    )


def test_cr_lf_in_vendor_text_cannot_add_headers_or_lines(smtp_server):
    controller, recorder, _ = smtp_server()
    notice = Notice(
        "License alerts: 1 new",
        (
            Section(
                "New alerts",
                (("Under-used: x\r\nBcc: victim@example.org", "line\r\n.\r\nMAIL FROM:<x@y>"),),
            ),
        ),
    )
    s = settings(controller.port)
    assert send_email(email_message(notice, s), s).ok
    envelope, got = received(recorder)
    assert envelope.rcpt_tos == ["it@example.org", "finance@example.org"]
    assert got["Bcc"] is None
    # The message arrived whole (the lone "." did not end it early) and the text is still all there.
    text, _ = got.iter_parts()
    assert "MAIL FROM:<x@y>" in text.get_content()


# ------------------------------------------------------------- HTTP receiver


class Receiver:
    def __init__(self, status: int = 200, body: bytes = b"ok"):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                outer.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXXSECRETXXXX"


@pytest.fixture
def receiver():
    started = []

    def start(**kwargs):
        r = Receiver(**kwargs)
        r.thread.start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.server.shutdown()
        r.server.server_close()


ESCAPED = (  # Slack's escape, and no mention or link (a full-width @, look-alike ":" and ".")
    "&lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt; &lt;\uff20U123&gt; "
    "&lt;http\u2236//evil\u2024example|click&gt; =cmd &amp; co"
)

EXPECTED_PAYLOAD = {
    "text": (
        "License alerts: 2 new (1 critical)\n==================================\n\nNew alerts\n"
        "----------\n* [CRITICAL] Zoom account zm-2 needs reauthorization\n"
        "  Reconnect this account in Truto.\n"
        f"* [INFO] Under-used: GitHub: {ESCAPED}\n  12 of 40 seats assigned (30.0%), below 70%.\n\n"
        "Sent by the License utilization dashboard.\n"
    ),
    "blocks": [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": "License alerts: 2 new (1 critical)"},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*New alerts*"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*[CRITICAL] Zoom account zm-2 needs "
                "reauthorization*\nReconnect this account in Truto.",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*[INFO] Under-used: GitHub: {ESCAPED}*\n"
                "12 of 40 seats assigned (30.0%), below 70%.",
            },
        },
    ],
    "unfurl_links": False,
    "unfurl_media": False,
}


def test_the_webhook_receives_the_exact_slack_json(receiver):
    r = receiver()
    result = post_webhook(slack_payload(alerts()), Secret(r.url), timeout=5)
    assert result.ok and result.channel == "webhook"
    ((path, headers, body),) = r.requests
    assert path == "/services/T000/B000/XXXXSECRETXXXX"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == EXPECTED_PAYLOAD
    # Nothing Slack would turn into a mention, a channel ping or a link survives.
    for inert in ("<!channel>", "<@U123>", "<http://evil.example|click>", "<script>"):
        assert inert not in body.decode()


def test_slack_escaping_is_slack_s_three_characters_only():
    assert slack_escape("a & b < c > d \"e\" 'f'") == "a &amp; b &lt; c &gt; d \"e\" 'f'"
    assert slack_escape("&lt;") == "&amp;lt;"  # already-escaped text stays literal


def test_a_long_alert_list_is_cut_to_slack_s_limits_without_splitting_an_escape():
    many = [
        Alert(f"k{i}", "r", "over_allocated", "warning", f"Alert {i} " + "<" * 600, "d" * 4000)
        for i in range(60)
    ]
    payload = slack_payload(many)
    assert len(payload["blocks"]) <= 50
    assert payload["blocks"][-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "…and 20 more; see the Alerts page."}],
    }
    for block in payload["blocks"]:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= 3000
        assert "<" not in text and not text.rstrip("…*").endswith(("&", "&l", "&lt"))
    assert len(payload["text"]) <= 3000


def test_a_failing_webhook_is_a_failed_result_that_never_shows_the_url_path(receiver):
    r = receiver(status=500, body=b"internal error at /services/T000/B000/XXXXSECRETXXXX")
    result = post_webhook(slack_payload(alerts()), r.url, timeout=5)
    port = r.server.server_address[1]
    assert not result.ok
    assert (
        result.error
        == f"the webhook at http://127.0.0.1:{port} answered HTTP 500: internal error at ********"
    )
    port = free_port()
    result = post_webhook(
        {"text": "x"}, Secret(f"http://127.0.0.1:{port}/hooks/SECRETPATH"), timeout=5
    )
    assert result == DeliveryResult(
        "webhook",
        False,
        f"could not connect to the webhook at http://127.0.0.1:{port}",
        result.attempted_at,
    )
    assert "SECRETPATH" not in repr(result)


def test_a_redirect_is_not_followed(receiver):
    r = receiver(status=302)
    result = post_webhook({"text": "x"}, WebhookSettings(Secret(r.url), timeout=5))
    assert not result.ok and "answered HTTP 302" in result.error and len(r.requests) == 1


# ------------------------------------------------------------------ settings


def test_settings_from_secrets():
    secrets = {
        "alerts": {
            "email": {
                "host": "smtp.example.org",
                "sender": "alerts@example.org",
                "recipients": "it@example.org, finance@example.org",
                "password": PASSWORD,
            },
            "webhook": {"url": "https://hooks.example.org/services/T/B/X", "timeout": 3},
        }
    }
    channels = alert_channels(secrets)
    assert channels.email == EmailSettings(
        "smtp.example.org",
        "alerts@example.org",
        ("it@example.org", "finance@example.org"),
        587,
        True,
        None,
        Secret(PASSWORD),
        10.0,
    )
    assert channels.email.login == "alerts@example.org"
    assert PASSWORD not in repr(channels)
    assert channels.webhook.url.reveal() == "https://hooks.example.org/services/T/B/X"
    assert channels.webhook.timeout == 3.0 and "services" not in repr(channels.webhook)
    assert (
        email_settings(
            {
                "alerts": {
                    "email": {
                        "host": "h",
                        "sender": "a@b.co",
                        "recipients": ["c@d.co"],
                        "starttls": False,
                    }
                }
            }
        ).port
        == 25
    )
    assert alert_channels({}) == alert_channels({"alerts": {}})
    assert alert_channels({}).email is None and alert_channels({}).webhook is None


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"sender": "a@b.co", "recipients": ["c@d.co"]},
            (
                "secrets.toml [alerts.email] host: expected the SMTP server's host name, e.g. "
                "smtp.example.org"
            ),
        ),
        (
            {"host": "h", "sender": "a@b.co", "recipients": ["c@d.co"], "port": 70000},
            "secrets.toml [alerts.email] port: 70000 is not a port number (1 to 65535)",
        ),
        (
            {"host": "h", "sender": "not an address", "recipients": ["c@d.co"]},
            (
                "secrets.toml [alerts.email] sender: 'not an address' is not an email address such "
                "as alerts@example.org"
            ),
        ),
        (
            {"host": "h", "sender": "a@b.co", "recipients": ["c@d.co", "x@y.co\r\nBcc: z@z.co"]},
            (
                "secrets.toml [alerts.email] recipients entry 2: 'x@y.co\\r\\nBcc: z@z.co' is "
                "not an email address "
                "such as alerts@example.org"
            ),
        ),
        (
            {"host": "h", "sender": "a@b.co", "recipients": []},
            "secrets.toml [alerts.email] recipients: expected a list of email addresses",
        ),
        (
            {"host": "h", "sender": "a@b.co", "recipients": ["c@d.co"], "starttls": "maybe"},
            "secrets.toml [alerts.email] starttls: 'maybe' is not true or false",
        ),
        (
            {
                "host": "h",
                "sender": "a@b.co",
                "recipients": ["c@d.co"],
                "password": PASSWORD + "\n",
            },
            (
                "secrets.toml [alerts.email] password: holds a line break or control character "
                "(value not shown); "
                "paste it again"
            ),
        ),
        (
            {"host": "h", "sender": "a@b.co", "recipients": ["c@d.co"], "timeout": 0},
            "secrets.toml [alerts.email] timeout: must be between 0 and 300 seconds, got 0",
        ),
        (
            {"host": "h", "sender": "a@b.co", "recipients": ["c@d.co"], "pasword": "x"},
            (
                "secrets.toml [alerts.email]: unknown key 'pasword' (known: host, port, "
                "starttls, implicit_tls, sender, recipients, "
                "username, password, allow_plaintext_login, timeout)"
            ),
        ),
    ],
)
def test_bad_email_settings_name_the_setting(section, message):
    with pytest.raises(ConfigError) as info:
        email_settings({"alerts": {"email": section}})
    assert str(info.value) == message
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.org/x",
        "not a url",
        "https:///path-only",
        "https://hooks.example.org:99999/x",
    ],
)
def test_a_bad_webhook_url_is_rejected_without_showing_it(url):
    with pytest.raises(ConfigError) as info:
        webhook_settings({"alerts": {"webhook": {"url": url}}})
    assert (
        str(info.value) == "secrets.toml [alerts.webhook] url: not an http(s) URL (value not shown)"
    )
