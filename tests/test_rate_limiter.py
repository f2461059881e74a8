"""The client's pacing (lib.truto.client.RateLimiter) with real threads and a real clock."""

from __future__ import annotations

import threading
import time

from lib.truto.client import RateLimiter


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
