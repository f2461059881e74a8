"""``python -m lib sync`` / ``python -m lib alerts`` in real subprocesses on the demo data, delivering to a
real SMTP server (aiosmtpd) and a loopback HTTP receiver: exact content, fire once, clear and fire
again, a failing channel retried on the next run, dry run, digest, exit codes."""

from __future__ import annotations

import email
import json
from email import policy

import pytest

from lib.analytics.alert_rules import AlertRule
from lib.auth import Actor
from lib.jobs.alerts import rule_rows
from lib.store import Store
from tests import test_notify
from tests.test_cli import run

smtp_server = test_notify.smtp_server  # the fixtures: aiosmtpd and the HTTP receiver
receiver = test_notify.receiver
ADMIN = Actor("boss@acme.com", "Boss", "admin")
OVER = AlertRule("over-allocated-paid", "over_allocated")
FAILED = AlertRule("account-failed", "account_failed", paid_only=False)
DEADLINE = AlertRule("deadline-30", "deadline_within", 30, paid_only=False)

EXPECTED_EMAIL = """License alerts: 1 new
=====================

New alerts
----------
* [WARNING] Over-allocated: Adobe: Acrobat Pro (account Adobe · acme-europe · ffd1b1b3)
  64 seats assigned, 60 bought: 4 seats beyond those bought. Annual true-up exposure: \
not known (no price or no exchange rate).

Sent by the License utilization dashboard.
"""


def write_secrets(path, smtp_port=None, webhook=None, digest=None):
    lines = []
    if digest:
        lines += ["[alerts]", f'digest = "{digest}"', ""]
    if smtp_port:
        lines += [
            "[alerts.email]",
            'host = "127.0.0.1"',
            f"port = {smtp_port}",
            "starttls = false",
            'sender = "alerts@example.org"',
            'recipients = ["it@example.org", "finance@example.org"]',
            "timeout = 5",
            "",
        ]
    if webhook:
        lines += ["[alerts.webhook]", f'url = "{webhook}"', "timeout = 5", ""]
    path.write_text("\n".join(lines))


@pytest.fixture
def deployment(tmp_path):
    db = f"sqlite:///{tmp_path / 'alerts.sqlite'}"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("")
    env = {"DATABASE_URL": db, "DASHBOARD_SECRETS_FILE": str(secrets)}

    def rules(*items):
        store = Store(db)
        try:
            store.save_alert_rules(rule_rows(items), ADMIN)
        finally:
            store.close()

    def cli(*args):
        return run(list(args), env, tmp_path)

    return db, secrets, rules, cli


def bodies(recorder):
    out = []
    for envelope in recorder.envelopes:
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        out.append((msg["Subject"], msg.get_body(("plain",)).get_content()))
    return out


def test_sync_sends_once_clears_fires_again_and_retries_a_failing_channel(
    deployment, smtp_server, receiver
):
    db, secrets, rules, cli = deployment
    controller, recorder, _ = smtp_server()
    hook = receiver()
    write_secrets(secrets, controller.port, hook.url)
    rules(OVER)

    proc = cli("sync", "--quiet")  # the demo has one failed account: exit 2, alerts still evaluated
    assert proc.returncode == 2, proc.stderr
    assert "FIRED [WARNING] Over-allocated: Adobe: Acrobat Pro" in proc.stderr
    assert "Sent 1 alert(s) by email" in proc.stderr and "Sent 1 alert(s) by webhook" in proc.stderr
    ((subject, text),) = bodies(recorder)
    assert subject == "License alerts: 1 new"
    assert text.replace("\r\n", "\n") == EXPECTED_EMAIL
    ((path, _, body),) = hook.requests
    assert path == "/services/T000/B000/XXXXSECRETXXXX"
    payload = json.loads(body)
    assert payload["blocks"][2]["text"]["text"] == (
        "*[WARNING] Over-allocated: Adobe: Acrobat Pro (account "
        "Adobe · acme-europe · ffd1b1b3)*\n64 seats assigned, 60 bought: 4 seats beyond "
        "those bought. Annual true-up exposure: not known (no price or no exchange rate)."
    )

    # Fire once: the condition still holds, nothing is sent again.
    again = cli("alerts")
    assert again.returncode == 0, again.stderr
    assert "No new alerts (1 still open)." in again.stderr
    assert len(recorder.envelopes) == 1 and len(hook.requests) == 1

    # Cleared (the rule is switched off), then on again: it fires again.
    rules()
    cleared = cli("alerts", "--json")
    assert cleared.returncode == 0
    assert json.loads(cleared.stdout)["cleared"] == [
        "over-allocated-paid:adobe:ffd1b1b3-4bcc-551c-a84c-09f27f2c145e:::lic-08-001"
    ]
    rules(OVER)
    fired = cli("alerts")
    assert fired.returncode == 3, fired.stderr
    assert fired.stdout.startswith("[WARNING] Over-allocated: Adobe: Acrobat Pro")
    assert len(recorder.envelopes) == 2 and len(hook.requests) == 2

    # The webhook fails: email delivered, webhook recorded as failed and retried on the next run.
    broken = receiver(status=500, body=b"boom")
    write_secrets(secrets, controller.port, broken.url)
    rules(OVER, FAILED)
    failing = cli("alerts", "--json")
    assert failing.returncode == 3
    out = json.loads(failing.stdout)
    assert [a["rule_id"] for a in out["fired"]] == ["account-failed"]
    assert [(d["channel"], d["ok"]) for d in out["deliveries"]] == [
        ("email", True),
        ("webhook", False),
    ]
    assert (
        out["deliveries"][1]["error"]
        == f"the webhook at http://127.0.0.1:{broken.server.server_address[1]} answered HTTP 500: boom"
    )
    assert "XXXXSECRETXXXX" not in failing.stdout + failing.stderr  # the URL path is the credential
    assert len(recorder.envelopes) == 3 and len(broken.requests) == 1
    store = Store(db)
    try:
        pending = store.pending_deliveries("demo")
        assert pending[["alert_key", "channel"]].values.tolist() == [
            ["account-failed:zoom:7d383c7a-068a-505e-bab4-623667e26571", "webhook"]
        ]
    finally:
        store.close()

    write_secrets(secrets, controller.port, hook.url)  # the webhook works again
    retried = cli("alerts", "--json")
    assert retried.returncode == 3
    out = json.loads(retried.stdout)
    assert out["fired"] == [] and out["retried"] == [
        "account-failed:zoom:7d383c7a-068a-505e-bab4-623667e26571"
    ]
    assert [(d["channel"], d["ok"]) for d in out["deliveries"]] == [("webhook", True)]
    assert len(recorder.envelopes) == 3  # email had it already
    assert "needs reauthorization" in json.loads(hook.requests[-1][2])["text"]
    assert cli("alerts").returncode == 0  # nothing left to send


def test_dry_run_sends_and_records_nothing_and_the_digest_is_one_message(deployment, smtp_server):
    db, secrets, rules, cli = deployment
    controller, recorder, _ = smtp_server()
    write_secrets(secrets)  # no channel yet
    assert cli("sync", "--quiet").returncode == 2
    write_secrets(secrets, controller.port)
    rules(DEADLINE)
    dry = cli("alerts", "--dry-run", "--json")
    assert dry.returncode == 3, dry.stderr
    out = json.loads(dry.stdout)
    # The demo contracts: the Zoom opt-out deadline (6 days), the renewal of ClickUp's month (18 days;
    # prefilled from the sync's billing listing: the alerts read the merged contracts) and the
    # GitHub renewal (25 days; its opt-out deadline passed).
    titles = [a["title"] for a in out["fired"]]
    assert len(titles) == 3
    assert titles[0].startswith("Opt-out deadline ")
    assert titles[0].endswith(
        "(in 6 days): Zoom: Zoom Workplace Business (account Zoom · acme-corp · 79605be7)"
    )
    assert titles[1].startswith("Renewal ")
    assert "(in 18 days): ClickUp: ClickUp Business, ClickUp Free Forever" in titles[1]
    assert titles[2].startswith("Renewal ")
    assert titles[2].endswith(
        "(in 25 days): GitHub: GitHub Enterprise (account GitHub · acme-corp · f7a20649)"
    )
    assert "Would send 3 alert(s) by email" in dry.stderr and recorder.envelopes == []
    real = cli("alerts")
    assert real.returncode == 3 and len(recorder.envelopes) == 1

    digest = cli("alerts", "--digest")
    assert digest.returncode == 3
    ((_, text),) = bodies(recorder)[1:]
    assert "Weekly license digest" in text
    for heading in (
        "Top 5 idle spend (paid licenses)",
        "Deadlines in the next 30 days",
        "Open alerts",
    ):
        assert heading in text
    assert "GitHub: GitHub Enterprise" in text

    # [alerts] digest = "weekly": once a week (this week's was sent above), not on every run.
    write_secrets(secrets, controller.port, digest="weekly")
    assert cli("alerts").returncode == 0 and len(recorder.envelopes) == 2


def test_a_bad_alert_setting_is_a_configuration_error(deployment):
    db, secrets, rules, cli = deployment
    assert cli("alerts").returncode == 1  # no snapshot yet
    assert cli("sync", "--quiet").returncode == 2
    secrets.write_text('[alerts.email]\nhost = "127.0.0.1"\nsender = "not an address"\n')
    proc = cli("alerts")
    assert proc.returncode == 1
    assert "secrets.toml [alerts.email] sender" in proc.stderr
    # The sync itself is not failed by it: it says so and keeps its own exit code.
    proc = cli("sync", "--quiet")
    assert (
        proc.returncode == 2 and "Alerts not evaluated: secrets.toml [alerts.email]" in proc.stderr
    )


def test_alerts_name_licenses_whose_reclaimable_seats_cost_more_than_the_rule_says(deployment):
    from lib.jobs.demo import seed_demo_pricing

    db, secrets, rules, cli = deployment
    store = Store(db)
    seed_demo_pricing(store)  # the demo's prices (the app seeds them; the command line does not)
    store.close()
    assert cli("sync", "--quiet").returncode == 2  # the demo: one account needs reauthorisation
    rules(AlertRule("reclaim-10k", "reclaimable_cost_above", 10_000, channels=()))
    out = json.loads(cli("alerts", "--dry-run", "--json").stdout)
    titles = [a["title"] for a in out["fired"]]
    # From the seats the sync stored: e.g. Sales Cloud Enterprise (19 inactive, 8 departed ... seats
    # at 1,980 a year each) is far above 10,000; free licenses never alert on cost.
    assert any(
        t.startswith("Reclaimable seats: Salesforce: Sales Cloud Enterprise") for t in titles
    )
    assert not any("Chatter Free" in t or "Zoom Basic" in t for t in titles)
    sales = next(a for a in out["fired"] if "Sales Cloud Enterprise" in a["title"])
    store = Store(db)
    try:  # an exempt license is never reclaimable: its alert goes
        store.add_exemption("license", sales["license_id"], "negotiated", ADMIN, "salesforce")
    finally:
        store.close()
    again = json.loads(cli("alerts", "--dry-run", "--json").stdout)
    assert [a["title"] for a in again["fired"]] == [t for t in titles if t != sales["title"]]
