"""The client's pacing (lib.truto.client.RateLimiter) with real threads and a real clock."""

from __future__ import annotations

import threading
import time

import pytest

from lib.truto.client import RateLimiter
from lib.truto.transport import ServerLimit, server_limit


def _queued(limiter: RateLimiter, n: int, timeout: float = 5.0) -> None:
    """Wait until ``n`` requests are queued for a token slot."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with limiter._cond:
            if len(limiter._waiting) >= n:
                return
        time.sleep(0.005)
    raise AssertionError(f"{n} requests never queued")


def test_a_free_slot_goes_to_the_account_started_first():
    limiter = RateLimiter(token_limit=1, account_limit=100, window=0.3, margin=0.0)
    limiter.acquire("first")
    order: list[str] = []

    def ask(account: str, priority: float) -> None:
        limiter.acquire(account, priority)
        order.append(account)

    late = threading.Thread(target=ask, args=("started-late", 7.0))
    early = threading.Thread(target=ask, args=("started-early", 1.0))
    late.start()
    _queued(limiter, 1)
    early.start()  # asks after the late one, but was started before it
    _queued(limiter, 2)
    late.join(5)
    early.join(5)
    assert order == ["started-early", "started-late"]


def test_a_request_held_by_its_own_account_never_holds_back_another():
    limiter = RateLimiter(token_limit=10, account_limit=1, window=1.0, margin=0.0)
    limiter.acquire("busy")
    held = threading.Thread(target=limiter.acquire, args=("busy", 0.0))
    held.start()  # waits about a second for its account's window
    time.sleep(0.05)
    started = time.monotonic()
    waited = limiter.acquire("other", 9.0)  # lower priority, but the token has room
    assert time.monotonic() - started < 0.5 and waited < 0.5
    held.join(5)
    assert not held.is_alive()


def test_the_token_window_is_never_exceeded_under_contention():
    limiter = RateLimiter(token_limit=5, account_limit=100, window=0.4, margin=0.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        for _ in range(3):
            limiter.acquire(f"acct-{k}", float(k))
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    stamps.sort()
    assert len(stamps) == 18
    # Any 6 consecutive grants span at least one window (5 per window).
    assert min(b - a for a, b in zip(stamps, stamps[5:])) >= 0.4 - 0.01


# -- the server's window, as the answers' ratelimit-* headers report it ------------------------


def _headers(limit: str, remaining: str, reset: str) -> dict[str, str]:
    return {"ratelimit-limit": limit, "ratelimit-remaining": remaining, "ratelimit-reset": reset}


def test_the_rate_limit_headers_are_read_as_documented():
    assert server_limit(_headers("110;w=10", "7", "3")) == ServerLimit(110, 10.0, 7, 3.0)
    assert server_limit(_headers("500", "499", "10")) == ServerLimit(500, None, 499, 10.0)
    # A list of policies: the first is in force, its window may be named on a later item.
    assert server_limit(_headers("10, 10;w=1, 1000;w=3600", "4", "1")) == ServerLimit(
        10, 1.0, 4, 1.0
    )
    assert server_limit(_headers("20;w=2", "90", "1")) == ServerLimit(20, 2.0, 20, 1.0)


@pytest.mark.parametrize(
    "headers",
    [
        _headers("nan", "1", "1"),
        _headers("0", "0", "1"),
        _headers("-5", "1", "1"),
        _headers("1e3", "1", "1"),
        _headers("10;w=10", "-1", "1"),
        _headers("10;w=10", "1.5", "1"),
        _headers("10;w=10", "٣", "1"),  # a digit, but not an ASCII one
        _headers("10;w=10", "1", "nan"),
        _headers("10;w=10", "1", "-1"),
        _headers("10, x", "1", "1"),
        {"ratelimit-limit": "10", "ratelimit-remaining": "1"},
        {},
    ],
)
def test_unreadable_rate_limit_headers_say_nothing(headers):
    assert server_limit(headers) is None


def _granted_at(limiter: RateLimiter, n: int) -> list[float]:
    """Grant ``n`` requests one after another (answers without headers); when each was granted."""
    started, stamps = time.monotonic(), []
    for _ in range(n):
        limiter.answered(limiter.grant("a"), None)
        stamps.append(time.monotonic() - started)
    return stamps


def test_the_server_budget_holds_requests_until_the_reset():
    limiter = RateLimiter(token_limit=100, account_limit=100, window=10.0)
    limiter.answered(limiter.grant("a"), ServerLimit(limit=6, window=None, remaining=4, reset=0.5))
    stamps = _granted_at(limiter, 3)
    # Half of the 4 left go at once (another process may be spending the other half); the next
    # waits for the reset.
    assert stamps[1] < 0.2 and 0.5 <= stamps[2] < 0.8


def test_after_the_reset_one_request_goes_first_and_its_answer_sets_the_budget():
    limiter = RateLimiter(token_limit=100, account_limit=100, window=10.0)
    limiter.answered(limiter.grant("a"), ServerLimit(limit=6, window=None, remaining=0, reset=0.3))
    started = time.monotonic()
    first = limiter.grant("a")
    assert time.monotonic() - started >= 0.3
    held = threading.Thread(target=_granted_at, args=(limiter, 2))
    held.start()
    held.join(0.3)
    assert held.is_alive()  # nothing more goes before the first answer is back
    limiter.answered(first, ServerLimit(limit=6, window=None, remaining=5, reset=1.0))
    held.join(0.2)
    assert not held.is_alive()  # two of the five left


def test_an_answer_older_than_the_budget_changes_nothing():
    limiter = RateLimiter(token_limit=100, account_limit=100, window=10.0)
    old = limiter.grant("a")
    new = limiter.grant("a")
    limiter.answered(new, ServerLimit(limit=10, window=10.0, remaining=0, reset=0.4))
    # Sent before the answer above, this one's figure is stale: it must not lift the hold.
    limiter.answered(old, ServerLimit(limit=10, window=10.0, remaining=9, reset=5.0))
    started = time.monotonic()
    limiter.answered(limiter.grant("a"), None)
    assert 0.35 <= time.monotonic() - started < 0.8


def test_requests_still_unanswered_count_against_the_budget():
    limiter = RateLimiter(token_limit=100, account_limit=100, window=10.0)
    pending = [limiter.grant("a") for _ in range(3)]  # unanswered: may reach the server late
    later = limiter.grant("a")
    limiter.answered(later, ServerLimit(limit=10, window=10.0, remaining=10, reset=0.4))
    # Of the 10 left, 3 may go to those granted earlier and still unanswered: of our half (5),
    # 2 are left to go now.
    assert _granted_at(limiter, 2)[1] < 0.2
    held = threading.Thread(target=_granted_at, args=(limiter, 1))
    held.start()
    held.join(0.25)
    assert held.is_alive()
    for grant in pending:
        limiter.answered(grant, None)
    held.join(2)  # after the reset, with nothing left unanswered
    assert not held.is_alive()


def _second_window(limiter: RateLimiter, first_remaining: int) -> None:
    """A first window alone (one request, its figure), then its reset; the new window's first
    request goes and its answer says ``first_remaining`` of 10 are left (9: only ours counted)."""
    limiter.answered(limiter.grant("a"), ServerLimit(limit=10, window=1.0, remaining=9, reset=0.3))
    time.sleep(0.35)  # past the first window's reset (its figure said 0.3 s)
    first = limiter.grant("a")
    limiter.answered(first, ServerLimit(limit=10, window=1.0, remaining=first_remaining, reset=1.0))


def test_alone_a_request_answered_with_a_figure_no_longer_counts_against_the_budget():
    limiter = RateLimiter(token_limit=100, account_limit=100, window=1.0)
    _second_window(limiter, 9)
    burst = [limiter.grant("a") for _ in range(4)]  # 4 of our half of 9
    for grant, left in zip(burst, (8, 7, 6, 5), strict=True):
        limiter.answered(grant, ServerLimit(limit=10, window=1.0, remaining=left, reset=1.0))
    # 5 left and nothing of ours unanswered: the figure counts all of ours, so half of 5 goes now
    # (counting the four as possibly late would hold the next request until the reset).
    stamps = _granted_at(limiter, 3)
    assert stamps[1] < 0.2
    assert stamps[2] >= 0.5  # answered without a figure, those two count: the third waits


def test_a_figure_our_requests_do_not_explain_means_another_process_shares_the_token():
    limiter = RateLimiter(token_limit=100, account_limit=100, window=1.0)
    _second_window(limiter, 7)  # 3 counted, 1 of them ours: another process spends the token
    burst = [limiter.grant("a") for _ in range(3)]  # 3 of our half of 7
    for grant, left in zip(burst, (6, 5, 4), strict=True):
        limiter.answered(grant, ServerLimit(limit=10, window=1.0, remaining=left, reset=1.0))
    # Shared: the two granted before the lowest figure's request, unanswered then, may yet reach the
    # server after it (the other process may be spending the other half): nothing more goes now.
    held = threading.Thread(target=_granted_at, args=(limiter, 1))
    held.start()
    held.join(0.3)
    assert held.is_alive()
    held.join(2)  # after the reset
    assert not held.is_alive()


def test_a_late_answer_from_the_window_before_changes_nothing():
    limiter = RateLimiter(token_limit=100, account_limit=100, window=1.0)
    _second_window(limiter, 9)
    late, now = limiter.grant("a"), limiter.grant("a")
    limiter.answered(now, ServerLimit(limit=10, window=1.0, remaining=7, reset=1.0))
    # Its reset is due now: it was counted in the window before, whose figure says nothing of this one.
    limiter.answered(late, ServerLimit(limit=10, window=1.0, remaining=0, reset=0.0))
    assert _granted_at(limiter, 2)[1] < 0.2  # 7 left, half of them ours
