"""Hostile input, second round: the alert channels (webhook and SMTP) against hostile servers on
loopback (tests/hostile.py; every server stops by itself), and hostile vendor text in the webhook.

1. a webhook that drips its answer is cut off at the configured timeout, whole;
2. a huge or compressed answer is read only up to a few KB, never decompressed beyond a cap;
3. an answer echoing the URL's token never gets it into an error, the store or the output;
4. an SMTP server that drips is cut off at the same deadline;
5. a password is never sent without TLS unless allowed (and said); implicit TLS (port 465);
6. a plain-http webhook URL to another host is refused unless allowed;
7. vendor text in the webhook makes no mention, link or emphasis in Slack, Mattermost, Rocket.Chat.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import ssl
import time
import tracemalloc

import pytest
import requests
from aiosmtpd.controller import Controller

from lib.analytics.alerts import Alert
from lib.analytics.digest import Notice, Section
from lib.config import ConfigError, Secret
from lib.jobs.channels import EmailSettings, WebhookSettings, email_settings, webhook_settings
from lib.jobs.notify import (
    chat_neutral,
    email_message,
    post_webhook,
    scrub_url,
    send_email,
    slack_payload,
)
from lib.store import Store
from lib.truto.transport import cut_off_after, make_session
from tests import test_alerts_job, test_notify
from tests.hostile import Drip, HostileTruto, Reply, timed
from tests.test_notify import PASSWORD, Recorder, alerts, free_port, make_cert

smtp_server = test_notify.smtp_server  # the fixtures: aiosmtpd, the HTTP receiver, a deployment
receiver = test_notify.receiver
deployment = test_alerts_job.deployment

TOKEN = "xoxb-7f3a9c2e41d8b6055e1f"
HOOK_PATH = f"/services/T0AB12CD3/B0EF45GH6/{TOKEN}"


def hook_url(server: HostileTruto, path: str = HOOK_PATH) -> Secret:
    return Secret(server.base_url + path)


def email_cfg(port: int, **overrides) -> EmailSettings:
    return test_notify.settings(port, **overrides)


def _drip_http(every: float = 0.5, pad: int = 0) -> Drip:
    # A status line and headers one byte at a time: each byte comes well within any read timeout.
    head = b"HTTP/1.1 500 Internal Server Error\r\n" + (
        b"X-Pad: " + b"p" * pad + b"\r\n" if pad else b""
    )
    return Drip((head + b"Content-Length: 4\r\n\r\nslow", every))


# A TLS record header announcing 80 bytes of handshake, then the 80 bytes (not a valid ServerHello):
# dripped, the client's TLS library waits for each byte well within any read timeout.
TLS_DRIP = b"\x16\x03\x03\x00\x50" + b"\x02" * 80


# ------------------------------------------------------------------ 1. webhook: one deadline


def test_a_webhook_dripping_its_answer_is_cut_off_at_the_timeout_whole():
    with _drip_http() as drip:  # ~60 bytes at 0.5 s: 30 s if only each read were timed
        result, took = timed(
            lambda: post_webhook({"text": "x"}, Secret(f"http://127.0.0.1:{drip.port}/h/x"), 1.0)
        )
    assert took < 6, took
    assert not result.ok and result.error == (
        f"the webhook at http://127.0.0.1:{drip.port} did not finish within 1 seconds "
        "(the timeout is for the whole send)"
    )


def test_an_https_webhook_dripping_its_tls_handshake_is_cut_off_at_the_timeout_whole():
    with Drip((TLS_DRIP, 0.5)) as drip:  # 85 bytes at 0.5 s: 42 s if only each read were timed
        result, took = timed(
            lambda: post_webhook({"text": "x"}, Secret(f"https://127.0.0.1:{drip.port}/h/x"), 1.0)
        )
    assert took < 6, took
    assert not result.ok and re.fullmatch(  # the handshake's own timeout may end it first
        rf"the webhook at https://127\.0\.0\.1:{drip.port} did not (finish within 1 seconds \(the "
        r"timeout is for the whole send\)|answer within 1 seconds)",
        result.error,
    ), result.error


def test_a_deadline_that_passes_while_connecting_still_cuts_the_exchange_off():
    # The watchdog finds no socket to shut down yet (here: the request has not even started); the
    # connection, once made, is shut down at once instead of dripping on.
    with _drip_http() as drip, make_session(1) as session:
        started = time.monotonic()
        with cut_off_after(0.1) as exchange:
            time.sleep(0.4)
            with pytest.raises(requests.RequestException):
                session.get(f"http://127.0.0.1:{drip.port}/x", timeout=5)
        took = time.monotonic() - started
    assert exchange.cut_off and took < 4, took


@pytest.fixture
def unanswered(monkeypatch):
    """A host name with three addresses where a connection is never accepted nor refused (a full
    listen queue on loopback: the SYN is dropped), as a dual-stack host whose addresses are down."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued = []
    for _ in range(3):  # fill the queue (never accepted)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        queued.append(s)
    time.sleep(0.2)
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "unanswered.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))] * 3
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield port
    for s in queued:
        s.close()
    listener.close()


def test_a_webhook_whose_addresses_never_answer_is_cut_off_at_the_timeout_whole(unanswered):
    # Each address tried got the whole connect timeout: three addresses took three times the deadline.
    url = Secret(f"http://unanswered.test:{unanswered}/services/T/B/x")
    result, took = timed(lambda: post_webhook({"text": "x"}, url, 1.0))
    assert took < 2.5, took
    assert not result.ok and re.fullmatch(
        rf"the webhook at http://unanswered\.test:{unanswered} did not (finish within 1 seconds "
        r"\(the timeout is for the whole send\)|answer within 1 seconds)",
        result.error,
    ), result.error


def test_a_webhook_host_name_that_cannot_be_encoded_fails_as_urllib3_says():
    # connecting within the deadline leaves a host name IDNA refuses to urllib3's own error
    url = Secret("http://" + "a" * 70 + ".example/services/T/B/x")
    result = post_webhook({"text": "x"}, url, 1.0)
    assert not result.ok and result.error.endswith("failed (LocationParseError)"), result.error


def test_a_webhook_dripping_its_body_after_a_failure_status_is_cut_off_too():
    body = [(b"x", 0.5)] * 120  # 60 s of body
    server = HostileTruto(lambda *a: Reply(502, {"Content-Type": "text/plain"}, body))
    with server:
        result, took = timed(lambda: post_webhook({"text": "x"}, hook_url(server), 1.0))
    assert result.error.startswith(f"the webhook at {server.base_url} answered HTTP 502")
    assert took < 6, took


def test_a_sync_with_a_dripping_webhook_finishes_and_retries_it_next_time(
    deployment, receiver, smtp_server
):
    db, secrets, rules, cli = deployment
    rules(test_alerts_job.OVER)
    with _drip_http(0.6, pad=100) as drip:  # ~160 bytes, 0.6 s apart: 96 s, each read 0.6 s
        test_alerts_job.write_secrets(
            secrets, webhook=f"http://127.0.0.1:{drip.port}/services/T/B/DRIPSECRET"
        )
        secrets.write_text(secrets.read_text().replace("timeout = 5", "timeout = 1"))
        proc, took = timed(lambda: cli("sync", "--quiet"))
    assert took < 60, took  # the drip alone would hold the webhook for 96 s
    assert proc.returncode == 2, (
        proc.stderr
    )  # the demo's failed account; the alerts do not change it
    assert (
        f"FAILED to send 1 alert(s) by webhook: the webhook at http://127.0.0.1:{drip.port} "
        "did not finish within 1 seconds" in proc.stderr
    )
    assert "DRIPSECRET" not in proc.stderr + proc.stdout
    store = Store(db)
    try:
        assert store.pending_deliveries("demo")["channel"].tolist() == ["webhook"]
    finally:
        store.close()

    # The next run retries it. 5: with a password over plain TCP allowed, the run says so first.
    hook = receiver()
    controller, recorder, _ = smtp_server(password=PASSWORD)  # no TLS
    secrets.write_text(
        f'[alerts.webhook]\nurl = "{hook.url}"\n\n'
        f'[alerts.email]\nhost = "127.0.0.1"\nport = {controller.port}\nstarttls = false\n'
        'sender = "alerts@example.org"\nrecipients = ["it@example.org"]\n'
        f'password = "{PASSWORD}"\nallow_plaintext_login = true\ntimeout = 5\n'
    )
    again = cli("alerts", "--json")
    out = json.loads(again.stdout)
    assert again.returncode == 3 and out["retried"], again.stderr
    assert [(d["channel"], d["ok"]) for d in out["deliveries"]] == [("webhook", True)]
    assert len(hook.requests) == 1
    warning = (
        f"Email: the password for the SMTP server 127.0.0.1:{controller.port} is sent without TLS "
        "(allow_plaintext_login = true)\n"
    )
    assert again.stderr.startswith(warning), again.stderr
    assert PASSWORD not in again.stderr + again.stdout


# ------------------------------------------------------------------ 2. webhook: the answer's size


def _peak(fn):
    tracemalloc.start()
    try:
        value = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, peak


def test_a_huge_answer_is_not_read():
    chunk = b"e" * (1024 * 1024)
    body = [(chunk, 0.0)] * 64  # 64 MB, the same bytes sent again and again
    server = HostileTruto(lambda *a: Reply(500, {"Content-Type": "text/plain"}, body))
    with server:
        result, peak = _peak(lambda: post_webhook({"text": "x"}, hook_url(server), 10.0))
    assert peak < 8 * 1024 * 1024, peak
    assert not result.ok and result.error.startswith(
        f"the webhook at {server.base_url} answered HTTP 500: eeee"
    )
    assert len(result.error) < 250


def test_a_gzip_bomb_answer_is_never_decompressed_beyond_a_cap():
    bomb = gzip.compress(b"z" * (100 * 1024 * 1024), compresslevel=9)  # 100 MB in ~100 KB
    server = HostileTruto(
        lambda *a: Reply(500, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, bomb)
    )
    with server:
        (result, took), peak = _peak(
            lambda: timed(lambda: post_webhook({"text": "x"}, hook_url(server), 10.0))
        )
    assert peak < 8 * 1024 * 1024 and took < 5, (peak, took)
    assert not result.ok and result.error.startswith(
        f"the webhook at {server.base_url} answered HTTP 500: zzz"
    )


def test_a_short_compressed_reason_is_read():
    server = HostileTruto(
        lambda *a: Reply(404, {"Content-Encoding": "gzip"}, gzip.compress(b"no_service"))
    )
    with server:
        result = post_webhook({"text": "x"}, hook_url(server), 5.0)
    assert result.error == f"the webhook at {server.base_url} answered HTTP 404: no_service"


# ------------------------------------------------------------------ 3. webhook: the secret


SPLICED = "\u200e".join(TOKEN[i : i + 7] for i in range(0, len(TOKEN), 7))


def _echo(path, params, headers):
    token = path.rsplit("/", 1)[1]
    return Reply.json({"error": "invalid_token", "token": token}, 401)


@pytest.mark.parametrize(
    "answer, reason",
    [
        (_echo, ": invalid_token"),
        (
            lambda p, q, h: Reply(403, {}, f"invalid token {TOKEN} for {p}\nmore".encode()),
            ": invalid token ******** for ********",
        ),
        (
            lambda p, q, h: Reply.json({"message": f"bad token '{TOKEN.upper()}'"}, 403),
            ": bad token '********'",
        ),
        (
            lambda p, q, h: Reply.json({"error": f"token {TOKEN[:12]}… revoked"}, 403),
            ": token ********… revoked",
        ),
        (lambda p, q, h: Reply.json({"error": f"see {q.get('key')}"}, 400), ": see ********"),
        (lambda p, q, h: Reply.json({"ok": False, "token": TOKEN}, 400), ""),
        (lambda p, q, h: Reply.json([TOKEN, "x"], 400), ""),
        (  # invisible marks every 7 characters: the cleaning drops them, the scrubbing must follow it
            lambda p, q, h: Reply(403, {}, f"bad token {SPLICED}".encode()),
            ": bad token ********",
        ),
        (
            lambda p, q, h: Reply.json({"error": "bad " + "\x00".join(TOKEN)}, 403),
            ": bad ********",
        ),
    ],
    ids=[
        "json-field",
        "text",
        "upper-case",
        "part-of-it",
        "query",
        "json-other",
        "json-list",
        "bidi-spliced",
        "nul-spliced",
    ],
)
def test_an_answer_echoing_the_url_s_token_never_shows_it(answer, reason):
    server = HostileTruto(answer)
    with server:
        result = post_webhook(
            {"text": "x"}, hook_url(server, HOOK_PATH + "?key=Q-SECRET-77aa"), 5.0
        )
    status = answer("/a/b", {}, {}).status
    assert not result.ok
    assert result.error == f"the webhook at {server.base_url} answered HTTP {status}{reason}"
    for secret in (TOKEN, TOKEN[:12], TOKEN.upper(), "Q-SECRET-77aa", "T0AB12CD3", "B0EF45GH6"):
        assert secret not in repr(result), result.error


def test_scrubbing_masks_every_part_of_the_path_and_query_wherever_it_appears():
    url = "https://hooks.example.org/hooks/ab%2Fcd/Tok3nValue?token=Q%20S&x=1"
    text = "ab/cd Tok3nValue tok3nvalue Q S Q%20S hooks.example.org /hooks/ab%2Fcd/Tok3nValue ok"
    assert scrub_url(text, url) == (
        "******** ******** ******** ******** ******** ********.example.org ******** ok"
    )
    assert scrub_url("nothing to hide", "") == "nothing to hide"


def test_a_token_echoed_by_the_webhook_stays_out_of_the_sync_the_store_and_the_json(
    deployment,
):
    db, secrets, rules, cli = deployment
    rules(test_alerts_job.OVER)
    server = HostileTruto(_echo)
    with server:
        test_alerts_job.write_secrets(secrets, webhook=server.base_url + HOOK_PATH)
        proc = cli("sync", "--quiet")
        again = cli("alerts", "--json")
    assert proc.returncode == 2, proc.stderr
    assert f"by webhook: the webhook at {server.base_url} answered HTTP 401: invalid_token" in (
        proc.stderr
    )
    out = json.loads(again.stdout)
    assert out["deliveries"][0]["error"].endswith("answered HTTP 401: invalid_token")
    everything = proc.stdout + proc.stderr + again.stdout + again.stderr
    assert TOKEN not in everything
    with open(db.removeprefix("sqlite:///"), "rb") as fh:
        assert TOKEN.encode() not in fh.read()


# ------------------------------------------------------------------ 4. SMTP: one deadline


def smtp_cut_off(where: str) -> str:
    """The error of an SMTP send cut off at a 1 s deadline (or by the socket's own timeout first)."""
    return (
        rf"the SMTP server {re.escape(where)} did not (finish within 1 seconds \(the "
        r"timeout is for the whole send\)|answer within 1 seconds)"
    )


@pytest.mark.parametrize(
    "steps",
    [
        ((b"220 " + b"s" * 56 + b"\r\n", 0.5),),  # the greeting, a byte at a time: 30 s
        (  # the answer to EHLO, a byte at a time: 30 s
            (b"220 drip.example ESMTP\r\n", 0),
            Drip.LINE,
            (b"250-drip.example\r\n250 " + b"8" * 40 + b"\r\n", 0.5),
        ),
        ((TLS_DRIP, 0.5),),  # implicit TLS: the server's handshake, a byte at a time
        (  # STARTTLS, then the handshake a byte at a time
            (b"220 drip.example ESMTP\r\n", 0),
            Drip.LINE,
            (b"250-drip.example\r\n250 STARTTLS\r\n", 0),
            Drip.LINE,
            (b"220 go ahead\r\n", 0),
            (TLS_DRIP, 0.5),
        ),
    ],
    ids=["greeting", "ehlo-answer", "implicit-tls-handshake", "starttls-handshake"],
)
def test_an_smtp_server_that_drips_is_cut_off_at_the_timeout_whole(steps):
    tls = {"implicit_tls": True} if steps[0] == (TLS_DRIP, 0.5) else {}
    tls |= {"starttls": True} if len(steps) > 3 else {}
    with Drip(*steps) as drip:
        s = email_cfg(drip.port, timeout=1.0, **tls)
        result, took = timed(lambda: send_email(email_message(alerts(), s), s))
    assert took < 6, took
    # Python's TLS handshake is itself limited to the socket's timeout: it may end first.
    assert not result.ok and re.fullmatch(smtp_cut_off(f"127.0.0.1:{drip.port}"), result.error), (
        result.error
    )


def test_an_smtp_reply_echoing_the_password_where_it_is_cut_never_shows_part_of_it():
    # The reply is kept to 200 characters: the password is masked before that cut, not after it.
    echo = b"550 " + b"x" * 190 + PASSWORD.encode() + b"\r\n"
    steps = [(b"220 drip.example ESMTP\r\n", 0), Drip.LINE]
    steps += [(b"250-drip.example\r\n250 AUTH PLAIN\r\n", 0), Drip.LINE, (b"235 ok\r\n", 0)]
    steps += [Drip.LINE, (echo, 0), Drip.LINE, (b"250 ok\r\n", 0)]
    with Drip(*steps) as drip:
        s = email_cfg(drip.port, timeout=5.0, password=Secret(PASSWORD), allow_plaintext_login=True)
        result = send_email(email_message(alerts(), s), s)
    assert not result.ok
    assert result.error == (
        f"the SMTP server 127.0.0.1:{drip.port} answered 550: {'x' * 190}********"
    ), result.error
    assert PASSWORD[:4] not in result.error


def test_an_smtp_server_whose_addresses_never_answer_is_cut_off_at_the_timeout_whole(unanswered):
    # Each address tried got the whole timeout: three addresses took three times the deadline.
    s = email_cfg(unanswered, host="unanswered.test", timeout=1.0)
    result, took = timed(lambda: send_email(email_message(alerts(), s), s))
    assert took < 2.5, took
    assert not result.ok and re.fullmatch(
        smtp_cut_off(f"unanswered.test:{unanswered}"), result.error
    ), result.error


# ------------------------------------------------------------------ 5. SMTP: TLS


def test_a_password_is_not_sent_without_tls_unless_allowed(smtp_server):
    controller, recorder, _ = smtp_server(password=PASSWORD)  # no TLS; AUTH offered anyway
    s = email_cfg(controller.port, password=Secret(PASSWORD))
    result = send_email(email_message(alerts(), s), s)
    assert not result.ok and recorder.envelopes == []
    assert result.error == (
        f"not sent: the password for the SMTP server 127.0.0.1:{controller.port} would travel "
        "without TLS (set starttls = true or implicit_tls = true, or allow_plaintext_login = true)"
    )
    allowed = email_cfg(controller.port, password=Secret(PASSWORD), allow_plaintext_login=True)
    assert send_email(email_message(alerts(), allowed), allowed).ok
    assert len(recorder.envelopes) == 1


def test_plaintext_login_settings_are_refused_unless_allowed():
    base = {"host": "h", "sender": "a@b.co", "recipients": ["c@d.co"], "password": PASSWORD}
    with pytest.raises(ConfigError) as info:
        email_settings({"alerts": {"email": {**base, "starttls": False}}})
    assert "allow_plaintext_login = true" in str(info.value) and PASSWORD not in str(info.value)
    allowed = email_settings(
        {"alerts": {"email": {**base, "starttls": False, "allow_plaintext_login": True}}}
    )
    assert allowed.plaintext_login and allowed.allow_plaintext_login and allowed.port == 25
    assert not email_settings({"alerts": {"email": base}}).plaintext_login  # STARTTLS: fine
    with pytest.raises(ConfigError, match="allow_plaintext_login: 'yes' is not true or false"):
        email_settings({"alerts": {"email": {**base, "allow_plaintext_login": "yes"}}})


def test_implicit_tls_settings():
    base = {"host": "h", "sender": "a@b.co", "recipients": ["c@d.co"], "password": PASSWORD}
    s = email_settings({"alerts": {"email": {**base, "implicit_tls": True}}})
    assert (s.implicit_tls, s.starttls, s.port, s.plaintext_login) == (True, False, 465, False)
    with pytest.raises(ConfigError, match="set only one"):
        email_settings({"alerts": {"email": {**base, "implicit_tls": True, "starttls": True}}})


@pytest.fixture
def smtps_server(tmp_path):
    """aiosmtpd speaking TLS from the first byte (port-465 style), with a login."""
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    recorder = Recorder()

    def authenticator(server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"alerts@example.org" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=server_ctx,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield controller, recorder, ssl.create_default_context(cafile=str(cert))
    controller.stop()


def test_implicit_tls_delivers_and_checks_the_certificate(smtps_server):
    controller, recorder, client_ctx = smtps_server
    s = email_cfg(controller.port, implicit_tls=True, password=Secret(PASSWORD))
    untrusted = send_email(email_message(alerts(), s), s)  # the system's trust store: not our cert
    assert not untrusted.ok and untrusted.error.startswith(
        f"TLS with the SMTP server 127.0.0.1:{controller.port} failed"
    )
    result = send_email(email_message(alerts(), s), s, ssl_context=client_ctx)
    assert result.ok, result.error
    (envelope,) = recorder.envelopes
    assert envelope.rcpt_tos == ["it@example.org", "finance@example.org"]


# ------------------------------------------------------------------ 6. webhook: plain http


@pytest.mark.parametrize(
    "url", ["http://hooks.example.org/services/T/B/X", "http://10.0.0.5:8065/hooks/abc"]
)
def test_a_plain_http_webhook_to_another_host_is_refused_unless_allowed(url):
    with pytest.raises(ConfigError) as info:
        webhook_settings({"alerts": {"webhook": {"url": url}}})
    message = str(info.value)
    assert "allow_insecure_http = true" in message and "plain http" in message
    assert "services" not in message and "hooks/abc" not in message
    allowed = webhook_settings({"alerts": {"webhook": {"url": url, "allow_insecure_http": True}}})
    assert allowed == WebhookSettings(Secret(url), 10.0)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.org/x", "http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/x"],
)
def test_https_and_loopback_webhooks_are_accepted(url):
    assert webhook_settings({"alerts": {"webhook": {"url": url}}}).url.reveal() == url


# ------------------------------------------------------------------ 7. webhook: vendor markup

MARKUP = (
    "@channel @here @all @everyone @bob *bold* **b** _it_ ~strike~ ~~s~~ `code` ```block``` "
    "http://evil.example/x https://evil.example www.evil.example evil.example bob@evil.example "
    "[click](https://evil.example) ![img](http://evil.example/p.png) [ref]: http://evil.example "
    "#general ~town-square"
)


def _texts(payload) -> list[str]:
    out = [payload["text"]]
    for block in payload["blocks"]:
        if block.get("text", {}).get("type") == "mrkdwn":
            out.append(block["text"]["text"])
        out += [e["text"] for e in block.get("elements", [])]
    return out


def test_vendor_text_makes_no_mention_link_or_emphasis_in_the_webhook():
    notice = Notice(
        "License alerts",
        summary=f"summary {MARKUP}",
        sections=(
            Section(
                f"heading {MARKUP}",
                ((f"[INFO] Under-used: {MARKUP}", f"detail {MARKUP}"),),
                "nothing",
            ),
            Section("Empty", (), f"empty {MARKUP}"),
        ),
    )
    for text in _texts(slack_payload(notice)):
        inner = re.sub(r"^\*|\*$", "", text, flags=re.M)  # our own bold around a heading
        inner = re.sub(r"^\* ", "", inner, flags=re.M)  # and the fallback's bullets
        assert "@" not in inner, inner
        assert not re.search(r"[*_~`]", inner.replace("\n", " ")), inner
        assert "://" not in inner and "www." not in inner
        assert not re.search(r"[A-Za-z]\.[A-Za-z]", inner), inner
        assert "](" not in inner and "]:" not in inner and not re.search(r"#\w", inner)
        assert "<" not in inner  # and Slack's own escape still holds


def test_neutral_text_still_reads_the_same():
    assert chat_neutral("Adobe: Acrobat Pro (30.0%), TRUTO_API_TOKEN, v2.1") == (
        "Adobe: Acrobat Pro (30.0%), TRUTO_API_TOKEN, v2.1"
    )
    assert chat_neutral("a@b.co") == "a\uff20b\u2024co"


def test_the_demo_alert_is_unchanged_in_the_webhook():
    a = Alert(
        "k", "r", "over_allocated", "warning", "Over-allocated: Adobe: Acrobat Pro", "64 of 60."
    )
    payload = slack_payload([a])
    assert payload["blocks"][2]["text"]["text"] == (
        "*[WARNING] Over-allocated: Adobe: Acrobat Pro*\n64 of 60."
    )
