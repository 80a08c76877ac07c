"""Per-identity rate limits: a token bucket for each caller, in memory.

Each identity has a bucket holding up to ``burst`` tokens, refilled at
``per_minute / 60`` tokens a second; a request takes one token or is refused with
the seconds until one is back. Buckets live in one process (each gateway replica
limits on its own) and are thread-safe. A full bucket is the same as no bucket,
so full ones are dropped when the table grows past ``max_identities``.

The same buckets, keyed by client address, limit failed authentications
(``gateway.access``): an attempt takes a token before anything is checked
(:meth:`RateLimiter.take`) and a success gives it back (:meth:`RateLimiter.refund`),
so an address whose bucket is empty is refused before any database read or scrypt.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from exchange.core.errors import AuthThrottledError, RateLimitedError

REASON = "rate limit exceeded"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` 0 turns limiting off. ``clock`` is monotonic seconds (tests pass one)."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_identities: int = 100_000,
    ) -> None:
        if per_minute < 0 or burst < 1:
            raise ValueError("per_minute must be >= 0 and burst >= 1")
        self.per_minute = per_minute
        self.burst = burst
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max = max_identities
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        return min(float(self.burst), bucket.tokens + (now - bucket.updated) * self._rate)

    def acquire(self, identity: str) -> None:
        """Take one token for ``identity``, or raise RateLimitedError with ``retry_after``."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(identity)
            if bucket is None:
                if len(self._buckets) >= self._max:
                    self._prune(now)
                bucket = self._buckets[identity] = _Bucket(float(self.burst), now)
            bucket.tokens, bucket.updated = self._refilled(bucket, now), now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self._rate
        raise RateLimitedError(
            f"{REASON}: at most {self.per_minute} requests a minute "
            f"(bursts of {self.burst}); retry in {math.ceil(wait)} s",
            retry_after=wait,
        )

    def take(self, key: str) -> float:
        """Take one token for ``key`` if there is one and return 0; otherwise take nothing
        and return the seconds until one is back. Never raises."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens, bucket.updated = self._refilled(bucket, now), now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate

    def refund(self, key: str) -> None:
        """Give back the token :meth:`take` took for ``key`` (the attempt succeeded)."""
        if not self.enabled:
            return
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if self._refilled(b, now) >= self.burst]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


THROTTLED = "too many failed authentications from this address"


def throttled(wait: float) -> AuthThrottledError:
    """The refusal of a request from an address out of failed-authentication tokens."""
    return AuthThrottledError(f"{THROTTLED}; retry in {math.ceil(wait)} s", retry_after=wait)


__all__ = ["REASON", "THROTTLED", "RateLimiter", "throttled"]
