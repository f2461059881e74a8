"""A small Truto client: pacing, retries, typed errors and cursor pagination.

Behaviour (``shared/truto-docs/NOTES.md``):

- Pacing: a sliding-window limiter keeps the client under the documented
  500 requests per 10 s per token and 50 per 10 s per integrated account
  (both configurable), so it never provokes a 429 by itself; and it follows the
  token's window as each answer's ``ratelimit-*`` headers report it, so that a
  lower limit than configured, or another process spending the same token,
  does not provoke one either (see :class:`RateLimiter`).
- Retries: 429 waits for ``Retry-After`` (or ``ratelimit-reset``); 502, 504
  and 5xx not flagged remote back off exponentially with jitter; network
  errors back off too; 400/401/403/404/422/503 and remote 5xx are final.
  Attempts and total waiting per request are bounded.
- Deadlines: one HTTP exchange (connect, headers, body) may take at most
  ``request_deadline`` seconds, one account's calls ``account_deadline`` and a
  whole fetch ``fetch_deadline``, waits included. A per-read timeout alone
  lets a server that drips a byte at a time hold a request forever; past a
  deadline the socket is shut down and only what ran out fails.
- Size: an answer may expand to at most ``max_response_bytes`` once
  decompressed (it is read in pieces, so a small gzip bomb cannot fill the
  memory); a bigger one fails that listing.
- The body is decoded at the edge: invalid UTF-8 and unpaired surrogates
  become U+FFFD, JSON nested too deep to parse is "malformed", a
  ``Retry-After`` that is not a finite, non-negative number is ignored.
- Errors become :class:`TrutoError` with the status, Truto's message, the
  remote flag and the account.
- The token is only ever put in the ``Authorization`` header; it is never in
  a message, a log line or an exception.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.auth

from lib.config import Settings
from lib.truto.pagination import Paginated
from lib.truto.text import clean_text
from lib.truto.transport import (
    _CHUNK,
    _CURRENT,
    _MAX_MESSAGE,
    _WATCHDOG,
    ServerLimit,
    TrutoError,
    _BearerAuth,
    _decode_json,
    _Exchange,
    _Malformed,
    _seconds,
    _TooLarge,
    make_session,
    server_limit,
)

log = logging.getLogger(__name__)
RETRY_STATUSES_ALWAYS = {429, 502, 504}
FINAL_STATUSES = {400, 401, 403, 404, 422, 503}


@dataclass(frozen=True)
class Grant:
    """One request let through by :class:`RateLimiter`; hand it back with ``answered``."""

    waited: float  # seconds it waited for its slot
    at: float  # when it was granted (the limiter's clock)
    seq: int  # the order in which slots were granted
    # Our requests still unanswered when it was granted: they may reach the server after it.
    unsure: int


class RateLimiter:
    """Sliding-window pacing for the token and for each integrated account, plus the token's window
    as the server reports it.

    ``grant(account, priority)`` blocks until one more request fits, then records it; ``answered``
    hands the request back with what its answer's ``ratelimit-*`` headers said. ``margin`` widens
    the sliding windows a little, so that requests sent just over a window apart cannot arrive
    inside one at the server.

    The server's window (the token's, which other processes using the same token spend too): an
    answer saying ``remaining`` requests are left until ``reset`` seconds from now is a budget. The
    server's count only goes down within a window, so the lowest ``remaining`` any answer of the
    window has reported counts every request of ours already answered (an answer reporting more was
    counted before it; one reporting less would be the lowest): what the server may not have counted
    yet is our requests still unanswered, and those answered without readable headers. Until the
    reset the limiter lets at most half of the budget be spent by those before a newer answer says
    more: another process reading the same figure may be spending the other half (so the last
    request of a window stays unused). An answer tells which window it belongs to by the reset it
    reports (whole seconds, rounded up: the reset lies between ``sent + reset - 1`` and
    ``now + reset``); an earlier window's late answer changes nothing, a later window's (newer than
    the one in force) starts a new budget. After the reset, one request goes first and its answer
    sets the new budget (a process starting on the new window at the same moment is unseen until
    then). An answer without readable headers tells nothing; a reset later than a window is not
    believed. The configured limits still apply on top: a server advertising more than them is not
    taken up on it. Two processes keep to the window this way; more may draw the odd 429, which is
    retried.

    When the token is the bottleneck, a free slot goes to the waiting request with the
    lowest ``priority`` (then the one that asked first): the fetch gives each account the order in
    which it was started, so accounts started first finish first and free their worker for the next
    account, instead of every account crawling at the same pace and the last ones starting at the
    end (a tail as long as one account's whole chain of pages). A request held back by its own
    account's window never holds the others back.
    """

    def __init__(
        self,
        token_limit: int,
        account_limit: int,
        window: float,
        margin: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.token_limit = token_limit
        self.account_limit = account_limit
        self.window = window + margin
        self.clock = clock
        self._cond = threading.Condition()
        self._token: collections.deque[float] = collections.deque()
        self._accounts: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._waiting: list[tuple[float, int]] = []  # heap of (priority, ticket) ready for a slot
        self._tickets = itertools.count()
        self._granted = 0  # slots granted so far (a grant's seq is its place in this count)
        self._unanswered = 0
        # The server's budget: at most ``_budget`` requests left in its window, counting every request
        # of ours answered since the window began except ``_blind`` ones answered without readable
        # headers; the window began with the answer to the grant numbered ``_budget_seq`` (grants up
        # to ``_epoch_seq`` were made for an earlier window); its reset comes after ``_budget_after``
        # and by ``_budget_until`` (None: unknown until the next answer says). No budget before the
        # first readable answer.
        self._budget: int | None = None
        self._blind = 0
        self._budget_seq = -1
        self._epoch_seq = -1
        # The answer that set ``_budget`` (its grant's number, and ours unanswered when it was granted).
        self._low_seq, self._low_unsure = -1, 0
        # Another process spends the token: seen in this window, in the one before (taken as seen
        # before the first: being alone is shown by a whole window without a sign of another).
        self._shared, self._shared_before = False, True
        self._budget_until: float | None = None
        self._budget_after = -math.inf

    def _purge(self, q: collections.deque[float], now: float) -> None:
        edge = now - self.window
        while q and q[0] <= edge:
            q.popleft()

    def _leave(self, me: tuple[float, int]) -> None:
        self._waiting.remove(me)
        heapq.heapify(self._waiting)
        self._cond.notify_all()

    def _server_hold(self, now: float) -> float:
        """Seconds the server's budget holds the next request back (0: none; inf: until an answer)."""
        if self._budget is None:
            return 0.0
        if self._budget_until is not None and now >= self._budget_until:
            # The window has reset. Another process may be starting on it this very moment, unseen:
            # one request first, and the budget from its answer.
            self._budget, self._blind = 0, 0
            self._budget_seq = self._epoch_seq = self._low_seq = self._granted - 1
            self._low_unsure = 0
            self._budget_until = None
            self._budget_after = -math.inf
            self._shared, self._shared_before = False, self._shared
        if self._shared or self._shared_before:
            # Another process spends it too: count as not yet counted every request of ours that may
            # have reached the server after the lowest figure's (answered since or not).
            ours = self._low_unsure + self._granted - 1 - self._low_seq
        else:  # alone: only what is unanswered, or was answered without a figure
            ours = self._unanswered + self._blind
        if ours < self._budget // 2:
            return 0.0
        if self._budget_until is not None:
            return self._budget_until - now
        # Spent, and the reset is not known yet: an answer will tell; with none coming, ask.
        return math.inf if self._unanswered else 0.0

    def acquire(self, account: str | None = None, priority: float = 0.0) -> float:
        """Wait for a slot that needs no answer back; returns the seconds waited."""
        grant = self.grant(account, priority)
        self.answered(grant, None)
        return grant.waited

    def grant(self, account: str | None = None, priority: float = 0.0) -> Grant:
        """Wait for a slot and take it; the caller passes the grant to ``answered`` afterwards."""
        started = self.clock()
        with self._cond:
            me = (priority, next(self._tickets))
            queued = False
            try:
                while True:
                    now = self.clock()
                    self._purge(self._token, now)
                    q = None
                    if account is not None:
                        q = self._accounts[account]
                        self._purge(q, now)
                        if len(q) >= self.account_limit:
                            if queued:
                                queued = False
                                self._leave(me)
                            self._cond.wait(q[0] + self.window - now)
                            continue
                    if not queued:
                        heapq.heappush(self._waiting, me)
                        queued = True
                    full = len(self._token) >= self.token_limit
                    wait = self._token[0] + self.window - now if full else 0.0
                    wait = max(wait, self._server_hold(now))
                    if wait <= 0 and self._waiting[0] == me:
                        heapq.heappop(self._waiting)
                        queued = False
                        self._token.append(now)
                        if q is not None:
                            q.append(now)
                        grant = Grant(max(0.0, now - started), now, self._granted, self._unanswered)
                        self._granted += 1
                        self._unanswered += 1
                        self._cond.notify_all()
                        return grant
                    # The head of the queue is told when the window frees; the others when it
                    # takes its slot (or leaves), and all of them when an answer comes back.
                    self._cond.wait(wait if 0 < wait < math.inf else None)
            finally:
                if queued:
                    self._leave(me)

    def answered(self, grant: Grant, server: ServerLimit | None) -> None:
        """The request of ``grant`` is over; ``server`` is what its answer said of the window."""
        with self._cond:
            self._unanswered -= 1
            if grant.seq > self._epoch_seq:
                self._count(grant, server)
            self._cond.notify_all()

    def _count(self, grant: Grant, server: ServerLimit | None) -> None:
        if server is None:
            self._blind += 1
            return
        if server.limit - server.remaining > self._granted - 1 - self._epoch_seq:
            self._shared = True  # the window counts more requests than we have sent in it
        # A reset later than any window is not believed.
        window = max(self.window, server.window or 0.0)
        reset = min(server.reset, window)
        # Whole seconds rounded up: the reset comes after (sent + reset - 1), by (now + reset).
        after, until = grant.at + reset - 1.0, self.clock() + reset
        blind = self._blind
        if self._budget is not None and self._budget_until is not None:
            # Which window: resets of two windows lie a window apart, the bounds of one reset overlap.
            half = (server.window or self.window) / 2
            apart = (after + until - self._budget_after - self._budget_until) / 2
            if apart < -half or (apart > half and grant.seq < self._budget_seq):
                return  # an earlier window's, answered late; or a later one's sent before the budget
            if apart <= half:
                # The same window: the lowest figure counts the most, and the reset is known closer
                # (bounds that contradict the ones in force are not taken).
                if server.remaining < self._budget:
                    self._budget, self._low_seq, self._low_unsure = (
                        server.remaining,
                        grant.seq,
                        grant.unsure,
                    )
                after, until = max(self._budget_after, after), min(self._budget_until, until)
                if after <= until:
                    self._budget_after, self._budget_until = after, until
                return
            blind = 0  # a later window: what was answered blind went to the one before
            self._shared, self._shared_before = False, self._shared
        self._budget, self._blind, self._budget_seq = server.remaining, blind, grant.seq
        self._low_seq, self._low_unsure = grant.seq, grant.unsure
        self._budget_after, self._budget_until = after, until


@dataclass
class CallStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers received
    wait_seconds: float = 0.0  # pacing plus retry waits


@dataclass
class TrutoClient(Paginated):
    settings: Settings
    session: requests.Session | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        s = self.settings
        if self.session is None:
            self.session = make_session(s.max_workers)
        self.limiter = RateLimiter(s.token_rate_limit, s.account_rate_limit, s.rate_window)
        self._stats: dict[str | None, CallStats] = collections.defaultdict(CallStats)
        self._stats_lock = threading.Lock()
        self._fetch_deadline: float | None = None
        self._account_deadlines: dict[str, float] = {}
        self._account_order: dict[
            str, int
        ] = {}  # when each account was started: its pacing priority

    # -- stats ---------------------------------------------------------------------
    def stats(self, account_id: str | None) -> CallStats:
        with self._stats_lock:
            return self._stats[account_id]

    def _count(self, account_id: str | None, **delta: float) -> None:
        with self._stats_lock:
            st = self._stats[account_id]
            for k, v in delta.items():
                setattr(st, k, getattr(st, k) + v)

    # -- deadlines ---------------------------------------------------------------------
    def start_fetch(self) -> None:
        """Start the ``fetch_deadline`` clock (and forget the accounts' clocks of an earlier fetch)."""
        with self._stats_lock:
            self._fetch_deadline = time.monotonic() + self.settings.fetch_deadline
            self._account_deadlines.clear()
            self._account_order.clear()

    def start_account(self, account_id: str) -> None:
        """Start the ``account_deadline`` clock of one account (and give it its place in the
        pacing queue: accounts started first get the token's free slots first)."""
        with self._stats_lock:
            self._account_deadlines[account_id] = time.monotonic() + self.settings.account_deadline
            self._account_order.setdefault(account_id, len(self._account_order))

    def _priority(self, account_id: str | None) -> float:
        """The pacing priority of a call: the account list first (it feeds every account), then the
        accounts in the order they were started; an account never started last."""
        if account_id is None:
            return -1.0
        with self._stats_lock:
            return float(self._account_order.get(account_id, float("inf")))

    def _deadline(self, account_id: str | None) -> tuple[float, str] | None:
        """The earliest of the fetch's and the account's deadlines, with the setting's name."""
        with self._stats_lock:
            found = []
            if self._fetch_deadline is not None:
                found.append((self._fetch_deadline, "fetch_deadline"))
            if account_id in self._account_deadlines:
                found.append((self._account_deadlines[account_id], "account_deadline"))
        return min(found) if found else None

    def _out_of_time(self, name: str, account_id: str | None, path: str) -> TrutoError:
        seconds = getattr(self.settings, name)
        what = {
            "request_deadline": "One request",
            "account_deadline": "This account's requests",
            "fetch_deadline": "The whole fetch",
        }[name]
        return TrutoError(
            "deadline",
            f"{what} took longer than the {name} of {seconds:g} s; stopped.",
            account_id=account_id,
            path=path,
        )

    # -- one request ---------------------------------------------------------------------
    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        account_id: str | None = None,
        paced_account: str | None = None,
    ) -> Any:
        """GET ``path`` with retries; the decoded JSON body, or :class:`TrutoError`.

        ``account_id`` is whose stats and errors the call belongs to;
        ``paced_account`` is whose per-account rate limit it counts against
        (unified calls only).
        """
        s = self.settings
        if s.api_token is None:
            raise TrutoError(
                "auth", "No Truto API token is configured.", account_id=account_id, path=path
            )
        url = s.base_url + path
        auth = _BearerAuth(s.api_token)
        headers = {"Accept": "application/json"}
        budget = s.max_total_wait
        attempt = 0
        while True:
            attempt += 1
            delay: float | None  # None: not worth retrying
            grant = self.limiter.grant(paced_account, self._priority(paced_account))
            self._count(account_id, requests=1, wait_seconds=grant.waited)
            outer = self._deadline(account_id)
            now = time.monotonic()
            if outer is not None and outer[0] <= now:
                self.limiter.answered(grant, None)
                raise self._out_of_time(outer[1], account_id, path)
            until, name = now + s.request_deadline, "request_deadline"
            if outer is not None and outer[0] < until:
                until, name = outer
            exchange = _Exchange()
            _WATCHDOG.watch(exchange, until)
            resp_headers: Mapping[str, str] | None = None
            try:
                status, reason, resp_headers, body = self._exchange(
                    url, params, headers, auth, exchange
                )
            except requests.RequestException as exc:
                if exchange.cut_off:
                    raise self._out_of_time(name, account_id, path) from None
                error = TrutoError(
                    "network",
                    f"Could not reach Truto: {type(exc).__name__}",
                    account_id=account_id,
                    path=path,
                )
                delay = self._backoff(attempt)
            except (ValueError, UnicodeError) as exc:
                # e.g. a header value requests refuses; its message would quote the header (the token)
                raise TrutoError(
                    "http",
                    f"The request could not be sent ({type(exc).__name__}); check the "
                    "Truto settings",
                    account_id=account_id,
                    path=path,
                ) from None
            except _TooLarge:
                raise TrutoError(
                    "too_large",
                    f"Truto's answer was larger than max_response_bytes "
                    f"({s.max_response_bytes:,} bytes once decompressed); stopped reading it.",
                    account_id=account_id,
                    path=path,
                ) from None
            else:
                if status < 400:
                    try:
                        return _decode_json(body)
                    except _Malformed as exc:
                        raise TrutoError(
                            "malformed",
                            f"Truto answered with a body that is not valid JSON{exc}.",
                            status=status,
                            account_id=account_id,
                            path=path,
                        ) from None
                error = self._error(status, reason, body, account_id, path)
                delay = self._retry_delay(status, resp_headers, error, attempt)
                if status == 429:
                    self._count(account_id, rate_limited=1)
            finally:
                exchange.finish()
                self.limiter.answered(grant, server_limit(resp_headers))
            if delay is None or attempt >= s.max_attempts or delay > budget:
                if attempt > 1:
                    error.message += f" (gave up after {attempt} attempts)"
                    log.warning(
                        "GET %s (account %s) gave up after %d attempts: %s",
                        path,
                        account_id,
                        attempt,
                        error.kind,
                    )
                raise error
            outer = self._deadline(account_id)
            if outer is not None and time.monotonic() + delay > outer[0]:
                error.message += f" (no time left to retry within the {outer[1]})"
                raise error
            budget -= delay
            self._count(account_id, retries=1, wait_seconds=delay)
            if error.status == 429:
                log.info(
                    "GET %s (account %s): 429, waiting %.2f s before attempt %d",
                    path,
                    account_id,
                    delay,
                    attempt + 1,
                )
            else:
                log.info(
                    "GET %s (account %s): %s, retrying in %.2f s (attempt %d)",
                    path,
                    account_id,
                    error.status or error.kind,
                    delay,
                    attempt + 1,
                )
            self.sleep(delay)

    def _exchange(self, url: str, params, headers: dict, auth, exchange: _Exchange):
        """One HTTP exchange: (status, reason, headers, body bytes), the body read in pieces up to the cap."""
        limit = self.settings.max_response_bytes
        assert self.session is not None  # set in __post_init__
        _CURRENT.exchange = exchange
        try:
            with self.session.get(
                url,
                params=params,
                headers=headers,
                auth=auth,
                stream=True,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
            ) as resp:
                chunks, size = [], 0
                for chunk in resp.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise _TooLarge
                    chunks.append(chunk)
                return resp.status_code, resp.reason, resp.headers, b"".join(chunks)
        finally:
            _CURRENT.exchange = None

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def _retry_delay(self, status: int, headers, error: TrutoError, attempt: int) -> float | None:
        if status == 429:
            for header in ("Retry-After", "ratelimit-reset"):
                delay = _seconds(headers.get(header))
                if delay is not None:
                    return delay
            return self._backoff(attempt)
        if status in (502, 504):
            return self._backoff(attempt)
        if status >= 500 and status != 503 and not error.remote:
            return self._backoff(attempt)
        return None

    def _error(
        self, status: int, reason: str | None, raw: bytes, account_id: str | None, path: str
    ) -> TrutoError:
        try:
            body = _decode_json(raw)
        except _Malformed:
            body = {}
        if not isinstance(body, dict):
            body = {}
        message = body.get("message") or body.get("error") or reason or "no message"
        if not isinstance(message, str):
            message = str(message)
        message = clean_text(message)
        token = self.settings.api_token.reveal() if self.settings.api_token else ""
        if (
            token and token in message
        ):  # a server that echoes the request's Authorization header back
            message = message.replace(token, "********")
        message = message[:_MAX_MESSAGE]
        remote = bool(body.get("truto_is_remote_error"))
        insight = (
            body.get("truto_error_insight")
            if isinstance(body.get("truto_error_insight"), dict)
            else None
        )
        kind = {
            400: "bad_request",
            403: "forbidden",
            404: "not_found",
            422: "bad_request",
            429: "rate_limited",
            503: "blocked",
        }.get(status, "server" if status >= 500 else "http")
        if status == 401:
            kind = "needs_reauth" if remote else "auth"
        return TrutoError(
            kind,
            message,
            status=status,
            remote=remote,
            account_id=account_id,
            insight=insight,
            path=path,
        )
