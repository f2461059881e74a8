"""A small Truto client: pacing, retries, typed errors and cursor pagination.

Behaviour (``shared/truto-docs/NOTES.md``):

- Pacing: a sliding-window limiter keeps the client under the documented
  500 requests per 10 s per token and 50 per 10 s per integrated account
  (both configurable), so it never provokes a 429 by itself.
- Retries: 429 waits for ``Retry-After`` (or ``ratelimit-reset``); 502, 504
  and 5xx not flagged remote back off exponentially with jitter; network
  errors back off too; 400/401/403/404/422/503 and remote 5xx are final.
  Attempts and total waiting per request are bounded.
- Errors become :class:`TrutoError` with the status, Truto's message, the
  remote flag and the account.
- The token is only ever put in the ``Authorization`` header; it is never in
  a message, a log line or an exception.
"""

from __future__ import annotations

import collections
import email.utils
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import requests
import requests.auth
from requests.adapters import HTTPAdapter

from .config import Settings

RETRY_STATUSES_ALWAYS = {429, 502, 504}
FINAL_STATUSES = {400, 401, 403, 404, 422, 503}


class TrutoError(Exception):
    """A failed Truto call, in words a person can act on."""

    def __init__(
        self,
        kind: str,
        message: str,
        status: int | None = None,
        remote: bool = False,
        account_id: str | None = None,
        insight: dict | None = None,
        path: str | None = None,
    ):
        super().__init__(message)
        self.kind = kind              # auth, needs_reauth, not_found, bad_request, blocked, rate_limited,
        self.message = message        # server, network, malformed, cursor_loop, page_cap
        self.status = status
        self.remote = remote
        self.account_id = account_id
        self.insight = insight or {}
        self.path = path

    def missing_parameters(self) -> list[str]:
        """Names from ``truto_error_insight.missing_required_query_parameters``."""
        entry = self.insight.get("missing_required_query_parameters")
        value = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list):
            return []
        return [str(v).strip() for v in value if str(v).strip()]

    def __str__(self) -> str:
        bits = [f"HTTP {self.status}" if self.status else None, "from the vendor" if self.remote else None]
        extra = ", ".join(b for b in bits if b)
        return f"{self.message} ({extra})" if extra else self.message


class RateLimiter:
    """Sliding-window pacing for the token and for each integrated account.

    ``acquire(account)`` blocks until one more request fits both windows, then
    records it. ``margin`` widens the window a little, so that requests sent
    just over a window apart cannot arrive inside one at the server.
    """

    def __init__(self, token_limit: int, account_limit: int, window: float, margin: float = 0.25,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.token_limit = token_limit
        self.account_limit = account_limit
        self.window = window + margin
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._token: collections.deque[float] = collections.deque()
        self._accounts: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    def _purge(self, q: collections.deque[float], now: float) -> None:
        edge = now - self.window
        while q and q[0] <= edge:
            q.popleft()

    def acquire(self, account: str | None = None) -> float:
        """Wait for a slot; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                self._purge(self._token, now)
                wait = 0.0
                if len(self._token) >= self.token_limit:
                    wait = max(wait, self._token[0] + self.window - now)
                q = None
                if account is not None:
                    q = self._accounts[account]
                    self._purge(q, now)
                    if len(q) >= self.account_limit:
                        wait = max(wait, q[0] + self.window - now)
                if wait <= 0:
                    self._token.append(now)
                    if q is not None:
                        q.append(now)
                    return waited
            self.sleep(wait)
            waited += wait


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0           # 429 answers received
    wait_seconds: float = 0.0       # pacing plus retry waits


@dataclass
class TrutoClient:
    settings: Settings
    session: requests.Session | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        s = self.settings
        if self.session is None:
            self.session = make_session(s.max_workers)
        self.limiter = RateLimiter(s.token_rate_limit, s.account_rate_limit, s.rate_window, sleep=self.sleep)
        self._stats: dict[str | None, CallStats] = collections.defaultdict(CallStats)
        self._stats_lock = threading.Lock()

    # -- stats ---------------------------------------------------------------------
    def stats(self, account_id: str | None) -> CallStats:
        with self._stats_lock:
            return self._stats[account_id]

    def _count(self, account_id: str | None, **delta: float) -> None:
        with self._stats_lock:
            st = self._stats[account_id]
            for k, v in delta.items():
                setattr(st, k, getattr(st, k) + v)

    # -- one request ---------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None, account_id: str | None = None,
            paced_account: str | None = None) -> Any:
        """GET ``path`` with retries; the decoded JSON body, or :class:`TrutoError`.

        ``account_id`` is whose stats and errors the call belongs to;
        ``paced_account`` is whose per-account rate limit it counts against
        (unified calls only).
        """
        s = self.settings
        if s.api_token is None:
            raise TrutoError("auth", "No Truto API token is configured.", account_id=account_id, path=path)
        url = s.base_url + path
        auth = _BearerAuth(s.api_token)
        headers = {"Accept": "application/json"}
        budget = s.max_total_wait
        attempt = 0
        while True:
            attempt += 1
            waited = self.limiter.acquire(paced_account)
            self._count(account_id, requests=1, wait_seconds=waited)
            try:
                resp = self.session.get(url, params=params, headers=headers, auth=auth,
                                        timeout=(s.connect_timeout, s.read_timeout))
            except requests.RequestException as exc:
                error = TrutoError("network", f"Could not reach Truto: {type(exc).__name__}",
                                   account_id=account_id, path=path)
                delay = self._backoff(attempt)
            except (ValueError, UnicodeError) as exc:
                # e.g. a header value requests refuses; its message would quote the header (the token)
                raise TrutoError("http", f"The request could not be sent ({type(exc).__name__}); check the "
                                 "Truto settings", account_id=account_id, path=path) from None
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError:
                        raise TrutoError("malformed", "Truto answered with a body that is not valid JSON.",
                                         status=resp.status_code, account_id=account_id, path=path) from None
                error = self._error(resp, account_id, path)
                delay = self._retry_delay(resp, error, attempt)
                if resp.status_code == 429:
                    self._count(account_id, rate_limited=1)
            if delay is None or attempt >= s.max_attempts or delay > budget:
                if attempt > 1:
                    error.message += f" (gave up after {attempt} attempts)"
                raise error
            budget -= delay
            self._count(account_id, retries=1, wait_seconds=delay)
            self.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def _retry_delay(self, resp: requests.Response, error: TrutoError, attempt: int) -> float | None:
        status = resp.status_code
        if status == 429:
            for header in ("Retry-After", "ratelimit-reset"):
                delay = _seconds(resp.headers.get(header))
                if delay is not None:
                    return delay
            return self._backoff(attempt)
        if status in (502, 504):
            return self._backoff(attempt)
        if status >= 500 and status != 503 and not error.remote:
            return self._backoff(attempt)
        return None

    def _error(self, resp: requests.Response, account_id: str | None, path: str) -> TrutoError:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        message = body.get("message") or body.get("error") or resp.reason or "no message"
        if not isinstance(message, str):
            message = str(message)
        remote = bool(body.get("truto_is_remote_error"))
        insight = body.get("truto_error_insight") if isinstance(body.get("truto_error_insight"), dict) else None
        kind = {
            400: "bad_request", 403: "forbidden", 404: "not_found", 422: "bad_request",
            429: "rate_limited", 503: "blocked",
        }.get(status, "server" if status >= 500 else "http")
        if status == 401:
            kind = "needs_reauth" if remote else "auth"
        return TrutoError(kind, message, status=status, remote=remote, account_id=account_id,
                          insight=insight, path=path)

    # -- listings ---------------------------------------------------------------------
    def pages(self, path: str, params: dict[str, Any], account_id: str | None,
              paced_account: str | None = None) -> Iterator[list]:
        """Every page of a list, following ``next_cursor``.

        Stops on a null, absent or empty cursor. A cursor seen twice, or more
        pages than ``max_pages``, raises for this listing instead of looping.
        """
        s = self.settings
        base = dict(params)
        if s.page_limit:
            base["limit"] = s.page_limit
        seen: set[str] = set()
        cursor: str | None = None
        count = 0
        while True:
            query = dict(base)
            if cursor:
                query["next_cursor"] = cursor
            body = self.get(path, query, account_id=account_id, paced_account=paced_account)
            result = body.get("result") if isinstance(body, dict) else None
            if not isinstance(result, list):
                raise TrutoError("malformed", "Truto's answer had no result list.", status=200,
                                 account_id=account_id, path=path)
            count += 1
            yield result
            cursor = body.get("next_cursor")
            if cursor is None or cursor is False or cursor == "":
                return
            if isinstance(cursor, bool) or not isinstance(cursor, (str, int)):
                raise TrutoError("malformed", f"Truto sent a next_cursor that is not text ({type(cursor).__name__}).",
                                 status=200, account_id=account_id, path=path)
            cursor = str(cursor)
            if cursor in seen:
                raise TrutoError("cursor_loop",
                                 f"Truto sent the same next_cursor twice after {count} pages; stopped instead of looping.",
                                 account_id=account_id, path=path)
            seen.add(cursor)
            if count >= s.max_pages:
                raise TrutoError("page_cap", f"More than {s.max_pages} pages (the configured max_pages); stopped.",
                                 account_id=account_id, path=path)

    def list_all(self, path: str, params: dict[str, Any], account_id: str | None,
                 paced_account: str | None = None) -> list:
        out: list = []
        for page in self.pages(path, params, account_id, paced_account):
            out.extend(page)
        return out


def make_session(pool_size: int) -> requests.Session:
    """One session whose connection pool fits the worker pool."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _BearerAuth(requests.auth.AuthBase):
    """Sets the token header at send time (explicit auth also stops ~/.netrc from replacing it)."""

    def __init__(self, token):
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(********)"


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
