"""The per-identity token bucket, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from exchange.core.errors import RateLimitedError
from exchange.identity.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _refused(limiter: RateLimiter, identity: str) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as caught:
        limiter.acquire(identity)
    return caught.value


def test_a_burst_passes_and_the_next_request_is_refused() -> None:
    limiter = RateLimiter(60, 5, clock=Clock())
    for _ in range(5):
        limiter.acquire("alice")

    error = _refused(limiter, "alice")

    assert error.code == "rate_limited"
    assert error.message.startswith("rate limit exceeded")
    assert error.retry_after == pytest.approx(1.0)  # one token a second at 60/min


def test_tokens_come_back_at_the_configured_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(120, 2, clock=clock)  # two tokens a second
    limiter.acquire("alice")
    limiter.acquire("alice")
    _refused(limiter, "alice")

    clock.now += 0.5
    limiter.acquire("alice")
    assert _refused(limiter, "alice").retry_after == pytest.approx(0.5)

    clock.now += 100  # a long pause refills only up to the burst
    limiter.acquire("alice")
    limiter.acquire("alice")
    _refused(limiter, "alice")


def test_identities_have_their_own_buckets() -> None:
    limiter = RateLimiter(60, 1, clock=Clock())
    limiter.acquire("alice")
    _refused(limiter, "alice")

    limiter.acquire("bob")


def test_zero_per_minute_turns_the_limit_off() -> None:
    limiter = RateLimiter(0, 1, clock=Clock())
    for _ in range(1000):
        limiter.acquire("alice")
    assert not limiter.enabled
    assert len(limiter) == 0


def test_full_buckets_are_dropped_when_the_table_is_full() -> None:
    clock = Clock()
    limiter = RateLimiter(60, 1, clock=clock, max_identities=3)
    for name in ("a", "b", "c"):
        limiter.acquire(name)
    clock.now += 10  # all three are full again

    limiter.acquire("d")

    assert len(limiter) == 1


def test_concurrent_requests_never_take_more_than_the_burst() -> None:
    limiter = RateLimiter(1, 50, clock=Clock())  # the clock stands still: no refill
    passed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            try:
                limiter.acquire("alice")
            except RateLimitedError:
                continue
            with lock:
                passed.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(passed) == 50


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(60, 0)
