"""A Truto API emulator: a real HTTP server on loopback serving a data set.

It behaves as Truto documents (``shared/truto-docs``):

- ``GET /integrated-account`` (filters ``tenant_id``, ``status``) and
  ``GET /integrated-account/{id}``;
- ``GET /unified/user-directory/organizations`` and ``.../licenses`` with
  ``integrated_account_id``; ``organization_id`` required for Cisco Meraki,
  ClickUp and GitHub, ``product`` for Microsoft 365, answered with a 400 that
  carries ``truto_error_insight.missing_required_query_parameters``;
- ``GET /unified/user-directory/users`` for accounts the data set gives users (``users``:
  account id -> records; others answer 404, as an integration without the resource), each record
  holding only the fields its integration fills (``user_fields``: integration key -> field names,
  ``licenses.<key>`` for a key inside a license entry; no entry: every field);
- ``GET /unified/user-directory/billing`` for ClickUp, DocuSign and Zoom accounts (``billing``:
  account id -> records; such an account without an entry lists none; an account may demand
  ``organization_id`` with ``"_billing_requires"``); every other integration answers 404, as an
  integration without the resource;
- cursor pagination honouring ``limit`` (``{"result": [...], "next_cursor": ...}``);
- ``Authorization: Bearer`` checked (401 for a bad token);
- ``ratelimit-limit`` (``"500;w=10"``), ``ratelimit-remaining`` and ``ratelimit-reset`` (whole
  seconds, rounded up, until the window resets) on every answer, for the token's window: each
  token has one, shared by every client using it, a fixed window that starts with the first
  request after the last one ended; a 429 with ``Retry-After`` past 500 requests per window per
  token, or past 50 per 10 s per integrated account (a sliding window, the strictest reading of
  that limit; the headers do not describe it);
- the error body ``{"statusCode", "error", "message"}`` with
  ``truto_is_remote_error`` on upstream failures.

Faults can be switched on per account (see :class:`Faults`), and a latency
can be added to every answer, as a real-time unified call waits on the vendor.

Run it alone with ``python -m lib emulator --port N``.
"""

from __future__ import annotations

import base64
import collections
import json
import math
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lib.integrations import (
    LICENSES_ACCEPT_ORGANIZATION,
    MICROSOFT_365_PRODUCTS,
    integration_key,
    requires_organization,
    requires_product,
    supports_billing,
    supports_licenses,
    supports_organizations,
)

DEFAULT_PAGE_SIZE = 100


@dataclass
class Faults:
    """What goes wrong for one integrated account's unified calls."""

    needs_reauth: bool = False  # 401 with truto_is_remote_error: the vendor refused the credentials
    transient_502: int = 0  # this many 502s first, then normal answers
    transient_504: int = 0
    server_500: int = 0  # 500 not flagged remote (Truto-side, retryable)
    remote_500: int = 0  # 500 flagged remote (the vendor failed; not retried)
    remote_429: int = 0  # the vendor's own 429, flagged remote, Retry-After 1
    blocked_503: bool = False  # 503: the account is blocked
    slow: float = 0.0  # extra seconds on every answer
    malformed_json: bool = False  # 200 with a body that is not JSON
    repeat_cursor: bool = False  # next_cursor never changes
    missing_result: bool = False  # 200 JSON without a result list
    last_cursor: str = "null"  # how the last page ends: "null", "empty" ("") or "absent"
    users_500: bool = False  # the users listing fails (remote 500); the other listings answer
    billing_500: bool = False  # the billing listing fails (remote 500); the other listings answer

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass
class Counters:
    requests: int = 0
    rate_limited: int = 0  # 429s the emulator sent for its own limits
    by_path: collections.Counter = field(default_factory=collections.Counter)
    by_account: collections.Counter = field(default_factory=collections.Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    log: list = field(default_factory=list)  # (monotonic time, path, params) of every request


class _Window:
    """Sliding-window request log for one limit."""

    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self.times: collections.deque[float] = collections.deque()

    def _purge(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()

    def remaining(self, now: float) -> int:
        self._purge(now)
        return self.limit - len(self.times)

    def reset_in(self, now: float) -> float:
        self._purge(now)
        if len(self.times) < self.limit or not self.times:
            return 0.0 if not self.times else max(self.times[0] + self.window - now, 0.0)
        return max(self.times[0] + self.window - now, 0.0)


class _FixedWindow:
    """A token's window: ``limit`` requests from its start until ``window`` seconds later."""

    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self.start = -math.inf
        self.count = 0

    def _roll(self, now: float) -> None:
        if now >= self.start + self.window:
            self.start, self.count = now, 0

    def remaining(self, now: float) -> int:
        self._roll(now)
        return self.limit - self.count

    def reset_in(self, now: float) -> float:
        self._roll(now)
        return self.start + self.window - now

    def take(self, now: float) -> None:
        self._roll(now)
        self.count += 1

    def headers(self, now: float) -> dict[str, str]:
        return {
            "ratelimit-limit": f"{self.limit};w={self.window:g}",
            "ratelimit-remaining": str(max(self.remaining(now), 0)),
            "ratelimit-reset": str(math.ceil(self.reset_in(now))),
        }


class Emulator:
    """The server and its state. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        dataset: dict[str, Any],
        token: str = "emulator-token",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        token_limit: int = 500,
        account_limit: int = 50,
        window: float = 10.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        faults: dict[str, Faults | dict] | None = None,
        other_tokens: tuple[str, ...] = (),
    ):
        self.dataset = dataset
        self.token = token
        self.tokens = (token, *other_tokens)  # each with a window of its own
        self.latency = latency
        self.page_size = page_size
        self.lock = threading.Lock()
        self.token_windows = {t: _FixedWindow(token_limit, window) for t in self.tokens}
        self.account_windows: dict[str, _Window] = {}
        self.account_limit = account_limit
        self.window = window
        self.counters = Counters()
        self.faults: dict[str, Faults] = {}
        self._fault_hits: collections.Counter = collections.Counter()
        for account_id, f in (faults or {}).items():
            self.set_fault(account_id, f)
        self._accounts = {a["id"]: a for a in dataset.get("accounts", [])}
        self._host, self._port = host, port
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------
    def set_fault(self, account_id: str, faults: Faults | dict | None) -> None:
        with self.lock:
            if faults is None:
                self.faults.pop(account_id, None)
            else:
                self.faults[account_id] = (
                    faults if isinstance(faults, Faults) else Faults.from_dict(faults)
                )
            for key in [k for k in self._fault_hits if k[0] == account_id]:
                del self._fault_hits[key]

    def reset_counters(self) -> None:
        with self.lock:
            self.counters = Counters()

    @property
    def base_url(self) -> str:
        assert self.server is not None, "emulator not started"
        host, port = self.server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        server = _Server((self._host, self._port), handler)
        self.server = server
        self.thread = threading.Thread(
            target=server.serve_forever, name="truto-emulator", daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling ------------------------------------------------------------
    def _take_fault(self, account_id: str, name: str) -> bool:
        """True while the account still has hits left of a counted fault."""
        faults = self.faults.get(account_id)
        if faults is None:
            return False
        budget = getattr(faults, name)
        if isinstance(budget, bool):
            return budget
        key = (account_id, name)
        if self._fault_hits[key] < budget:
            self._fault_hits[key] += 1
            return True
        return False

    def admit(self, token: str, account_id: str | None) -> tuple[bool, dict[str, str]]:
        """Count a request against the limits; (allowed, the token's rate-limit headers)."""
        now = time.monotonic()
        with self.lock:
            window = self.token_windows[token]
            account = None
            if account_id:
                account = self.account_windows.setdefault(
                    account_id, _Window(self.account_limit, self.window)
                )
            waits = []
            if window.remaining(now) <= 0:
                waits.append(window.reset_in(now))
            if account is not None and account.remaining(now) <= 0:
                waits.append(account.reset_in(now))
            if not waits:
                window.take(now)
                if account is not None:
                    account.times.append(now)
            headers = window.headers(now)
            if waits:
                self.counters.rate_limited += 1
                headers["Retry-After"] = str(max(1, math.ceil(max(waits))))
            return not waits, headers

    def handle(
        self, path: str, params: dict[str, str], auth: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, body or raw bytes, extra headers) for one GET."""
        account_id = params.get("integrated_account_id")
        if path.startswith("/integrated-account/"):
            account_id = path.rsplit("/", 1)[1]
        with self.lock:
            c = self.counters
            c.requests += 1
            c.by_path[path] += 1
            if account_id:
                c.by_account[account_id] += 1
            c.log.append((time.monotonic(), path, dict(params)))
        token = next((t for t in self.tokens if auth == f"Bearer {t}"), None)
        if token is None:
            return (*_error(401, "Invalid API token."), {})
        unified = path.startswith("/unified/")
        allowed, headers = self.admit(token, account_id if unified else None)
        if not allowed:
            return (*_error(429, "Too many requests. Try again later."), headers)
        status, body = self._route(path, params, account_id)
        return status, body, headers

    def _route(self, path: str, params: dict[str, str], account_id: str | None) -> tuple[int, Any]:
        if path == "/integrated-account":
            accounts = list(self.dataset.get("accounts", []))
            for key in ("tenant_id", "status"):
                if params.get(key):
                    accounts = [a for a in accounts if a.get(key) == params[key]]
            if params.get("integration[name]"):
                want = integration_key(params["integration[name]"])
                accounts = [
                    a for a in accounts if integration_key(a["integration"]["name"]) == want
                ]
            return self._page([_public(a) for a in accounts], params, None)
        if path.startswith("/integrated-account/"):
            account = self._accounts.get(account_id or "")
            if account is None:
                return _error(404, "Integrated account not found.")
            return 200, _public(account)
        if path not in (
            "/unified/user-directory/organizations",
            "/unified/user-directory/licenses",
            "/unified/user-directory/users",
            "/unified/user-directory/billing",
        ):
            return _error(404, "Not found.")
        if not account_id:
            return _error(
                400, "integrated_account_id is required.", missing=["integrated_account_id"]
            )
        account = self._accounts.get(account_id)
        if account is None:
            return _error(404, "Integrated account not found.")

        with self.lock:
            faults = self.faults.get(account_id)
            fault_status = None
            if faults:
                if faults.needs_reauth:
                    fault_status = _error(
                        401, "The credentials for this account are no longer valid.", remote=True
                    )
                elif faults.blocked_503:
                    fault_status = _error(503, "This integrated account is blocked.")
                elif self._take_fault(account_id, "transient_502"):
                    fault_status = _error(502, "Bad gateway.")
                elif self._take_fault(account_id, "transient_504"):
                    fault_status = _error(504, "Gateway timeout.")
                elif self._take_fault(account_id, "server_500"):
                    fault_status = _error(500, "Internal server error.")
                elif self._take_fault(account_id, "remote_500"):
                    fault_status = _error(500, "The remote API failed.", remote=True)
                elif self._take_fault(account_id, "remote_429"):
                    status, body = _error(429, "Rate limited by the remote API.", remote=True)
                    return status, ("remote-429", body)
        if fault_status:
            return fault_status[:2]
        if account.get("status") == "needs_reauth":
            return _error(401, account.get("last_error") or "Credentials expired.", remote=True)

        integration = account["integration"]["name"]
        if path.endswith("/users"):
            if faults and faults.users_500:
                return _error(500, "The remote API failed listing users.", remote=True)
            users = self.dataset.get("users", {})
            if account_id not in users:
                return _error(404, "This integration does not support the users resource.")
            fields = self.dataset.get("user_fields", {}).get(integration_key(integration))
            records = [
                _user_fields(r, fields) if isinstance(r, dict) else r for r in users[account_id]
            ]
            return self._page(records, params, account_id)
        if path.endswith("/billing"):
            if not supports_billing(integration):
                return _error(404, "This integration does not support the billing resource.")
            if faults and faults.billing_500:
                return _error(500, "The remote API failed listing billing.", remote=True)
            records = self.dataset.get("billing", {}).get(account_id, [])
            if "organization_id" in account.get("_billing_requires", ()):  # a data set's choice
                if not params.get("organization_id"):
                    return _error(
                        400,
                        "Missing required query parameters: organization_id",
                        missing=["organization_id"],
                    )
                records = [
                    r
                    for r in records
                    if isinstance(r, dict)
                    and r.get("_organization_id") == params["organization_id"]
                ]
            return self._page(
                [_public(r) if isinstance(r, dict) else r for r in records], params, account_id
            )
        if path.endswith("/organizations"):
            known = supports_organizations(integration)
            if known is False or (
                known is None and account_id not in self.dataset.get("organizations", {})
            ):
                return _error(404, "This integration does not support the organizations resource.")
            records = self.dataset.get("organizations", {}).get(account_id, [])
            return self._page(records, params, account_id)

        if not (supports_licenses(integration) or "_requires" in account):
            return _error(404, "This integration does not support the licenses resource.")
        needs_org, needs_product = requires_organization(integration), requires_product(integration)
        if "_requires" in account:  # a data set may declare requirements for a name we do not know
            needs_org = "organization_id" in account["_requires"]
            needs_product = "product" in account["_requires"]
        missing = []
        if needs_org and not params.get("organization_id"):
            missing.append("organization_id")
        if needs_product and not params.get("product"):
            missing.append("product")
        if missing:
            return _error(
                400, f"Missing required query parameters: {', '.join(missing)}", missing=missing
            )
        if (
            params.get("product")
            and needs_product
            and params["product"] not in MICROSOFT_365_PRODUCTS
        ):
            return _error(400, f"Invalid value for product: {params['product']}")
        records = self.dataset.get("licenses", {}).get(account_id, [])
        org = params.get("organization_id")
        takes_org = needs_org or integration_key(integration) in {
            integration_key(n) for n in LICENSES_ACCEPT_ORGANIZATION
        }
        if org and takes_org:
            records = [
                r for r in records if isinstance(r, dict) and r.get("_organization_id") == org
            ]
        if params.get("product"):
            records = [
                r for r in records if isinstance(r, dict) and r.get("_product") == params["product"]
            ]
        records = [_public(r) if isinstance(r, dict) else r for r in records]
        return self._page(records, params, account_id)

    def _page(
        self, records: list, params: dict[str, str], account_id: str | None
    ) -> tuple[int, Any]:
        try:
            limit = int(params.get("limit") or self.page_size)
            if limit < 1:
                raise ValueError
        except ValueError:
            return _error(400, f"Invalid value for limit: {params.get('limit')}")
        offset = 0
        cursor = params.get("next_cursor")
        if cursor:
            try:
                offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])
            except (ValueError, IndexError, UnicodeDecodeError):
                return _error(400, "Invalid cursor.")
        page = records[offset : offset + limit]
        nxt = None
        faults = self.faults.get(account_id or "")
        if offset + limit < len(records):
            nxt = base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode()
        if faults and faults.repeat_cursor:
            nxt = base64.urlsafe_b64encode(b"o:0").decode()
        if faults and faults.malformed_json:
            return 200, b'{"result": [{"id": "1", "name": '
        if faults and faults.missing_result:
            return 200, {"data": page, "next_cursor": None}
        body: dict[str, Any] = {"result": page, "next_cursor": nxt, "result_count": len(page)}
        if nxt is None and faults and faults.last_cursor == "empty":
            body["next_cursor"] = ""
        elif nxt is None and faults and faults.last_cursor == "absent":
            del body["next_cursor"]
        return 200, body


def _user_fields(record: dict, fields: list[str] | None) -> dict:
    """A user as its integration sends it: only the fields it fills (all when ``fields`` is None)."""
    record = _public(record)
    if fields is None:
        return record
    keep = set(fields) | {"id"}
    out = {k: v for k, v in record.items() if k in keep}
    if isinstance(out.get("licenses"), list):
        inner = {f.split(".", 1)[1] for f in fields if f.startswith("licenses.")} | {"id"}
        out["licenses"] = [
            {k: v for k, v in e.items() if k in inner} if isinstance(e, dict) else e
            for e in out["licenses"]
        ]
    return out


def _public(record: dict) -> dict:
    """A record as served: the data set's private "_" keys removed."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _error(status: int, message: str, remote: bool = False, missing: list[str] | None = None):
    body: dict[str, Any] = {
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
    }
    if remote:
        body["truto_is_remote_error"] = True
        body["raw_response"] = {"error": message}
    if missing:
        body["truto_error_insight"] = {
            "missing_required_query_parameters": {"value": missing, "message": message}
        }
    return status, body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # listen() backlog: many clients connect at once in the benchmarks


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    server_version = "truto-emulator"

    def log_message(
        self, fmt: str, *args: Any
    ) -> None:  # quiet: never echo requests (they carry tokens)
        pass

    def do_GET(self) -> None:  # noqa: N802
        emu = self.emulator
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with emu.lock:
            emu.counters.in_flight += 1
            emu.counters.max_in_flight = max(emu.counters.max_in_flight, emu.counters.in_flight)
        try:
            status, body, headers = emu.handle(
                parts.path.rstrip("/") or "/", params, self.headers.get("Authorization")
            )
            account_id = params.get("integrated_account_id")
            delay = emu.latency + (emu.faults[account_id].slow if account_id in emu.faults else 0.0)
            if delay:
                time.sleep(delay)
            if isinstance(body, tuple) and body[0] == "remote-429":
                body = body[1]
                headers = {**headers, "Retry-After": "1"}
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        finally:
            with emu.lock:
                emu.counters.in_flight -= 1
