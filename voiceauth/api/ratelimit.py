"""Per-key rate limiting: a token bucket per API key, in this process or shared by every worker in the database.

Each key may make ``burst`` requests at once and ``per_minute`` sustained. Requests with an invalid (unknown,
revoked, malformed) key have no key to count against: they are counted per client address instead
(:class:`RateLimiter` keyed by the address, in memory: ``api_auth_failures_per_minute``), and an address over its
budget is refused before its key is even looked up.

- :class:`RateLimiter` keeps the buckets in memory (pure; the clock is injected): right for one process.
- :class:`DatabaseRateLimiter` keeps them in the store's ``rate_buckets`` table and takes a token with one atomic
  ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement, so several ``voiceauth serve`` processes (and
  hosts) on one PostgreSQL enforce one budget per key without a read-modify-write race.

:func:`build_limiter` picks one from ``Settings.api_rate_limit_store`` (``auto``: shared on PostgreSQL, in memory
on SQLite, whose store is one host's).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, text

from voiceauth.config import Settings

__all__ = [
    "DatabaseRateLimiter",
    "Limiter",
    "RateLimiter",
    "build_auth_failure_limiter",
    "build_limiter",
    "retry_after_header",
]


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


class Limiter(Protocol):
    def acquire(self, key: Any) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds to wait before the next is available."""
        ...

    def retry_after_header(self, wait_s: float) -> str: ...


def _check(per_minute: float, burst: int) -> None:
    if per_minute <= 0 or burst < 1:
        raise ValueError(f"rate limit {per_minute}/min with burst {burst} is not valid; both must be positive")


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Buckets in this process's memory (each worker enforces its own budget)."""

    def __init__(self, per_minute: float, burst: int, now: Callable[[], float], max_keys: int = 100_000) -> None:
        _check(per_minute, burst)
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.now = now
        self.max_keys = max_keys
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> float:
        """Take one token for ``key`` (an API key id, a client address): 0.0 or the seconds to wait."""
        return self._take(key, take=True)

    def peek(self, key: Hashable) -> float:
        """The seconds until ``key`` has a token (0.0: it has one now); takes nothing."""
        return self._take(key, take=False)

    def _take(self, key: Hashable, *, take: bool) -> float:
        t = self.now()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if not take:
                    return 0.0
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()
                b = self._buckets[key] = _Bucket(self.burst, t)
            b.tokens = min(self.burst, b.tokens + max(0.0, t - b.at) * self.rate)
            b.at = t
            if b.tokens >= 1.0:
                if take:
                    b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate

    retry_after_header = staticmethod(retry_after_header)


# One statement takes a token: a new key's bucket starts full (less this token); an existing one is refilled for
# the time since its last take and, only when that leaves a whole token, stored less one (the WHERE on DO UPDATE):
# a refused request returns no row and changes nothing. Concurrent takes for one key queue on the row's lock and
# each sees the previous one's result (PostgreSQL re-evaluates ON CONFLICT DO UPDATE against the newest version).
_SQL = {
    "postgresql": ("LEAST", "GREATEST"),
    "sqlite": ("MIN", "MAX"),
}


class DatabaseRateLimiter:
    """Buckets in the ``rate_buckets`` table, shared by every worker on the database (one statement per request)."""

    def __init__(self, engine: Engine, per_minute: float, burst: int, now: Callable[[], float]) -> None:
        _check(per_minute, burst)
        dialect = engine.dialect.name
        if dialect not in _SQL:
            raise ValueError(f"database rate limiting does not support {dialect!r}; use postgresql or sqlite")
        self.engine = engine
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.now = now
        least, greatest = _SQL[dialect]
        refill = f"{least}(:burst, rate_buckets.tokens + {greatest}(0.0, :now - rate_buckets.updated_at) * :rate)"
        self._take = text(
            "INSERT INTO rate_buckets (key_id, tokens, updated_at) VALUES (:key, :burst - 1.0, :now) "
            f"ON CONFLICT (key_id) DO UPDATE SET tokens = {refill} - 1.0, "
            f"updated_at = {greatest}(:now, rate_buckets.updated_at) "
            f"WHERE {refill} >= 1.0 RETURNING tokens"
        )
        self._level = text("SELECT tokens, updated_at FROM rate_buckets WHERE key_id = :key")

    def acquire(self, key: int) -> float:
        t = float(self.now())
        params = {"key": key, "burst": self.burst, "now": t, "rate": self.rate}
        with self.engine.begin() as conn:
            if conn.execute(self._take, params).first() is not None:
                return 0.0
            row = conn.execute(self._level, {"key": key}).first()
        if row is None:  # the key's bucket was deleted meanwhile (key removed): nothing to wait for
            return 0.0
        level = min(self.burst, float(row[0]) + max(0.0, t - float(row[1])) * self.rate)
        return max((1.0 - level) / self.rate, 1e-3)

    retry_after_header = staticmethod(retry_after_header)


def build_limiter(settings: Settings, engine: Engine, now: Callable[[], float]) -> Limiter:
    """The limiter ``settings.api_rate_limit_store`` names (``auto``: shared on PostgreSQL, else in memory)."""
    per_minute, burst = settings.api_rate_limit_per_minute, settings.api_rate_limit_burst
    kind = settings.api_rate_limit_store
    if kind == "auto":
        kind = "database" if engine.dialect.name == "postgresql" else "memory"
    if kind == "database":
        return DatabaseRateLimiter(engine, per_minute, burst, now)
    return RateLimiter(per_minute, burst, now)


def build_auth_failure_limiter(settings: Settings, now: Callable[[], float]) -> RateLimiter:
    """Per client address: requests with an invalid API key (``api_auth_failures_per_minute``, burst
    ``api_auth_failure_burst``), in this process's memory."""
    return RateLimiter(settings.api_auth_failures_per_minute, settings.api_auth_failure_burst, now)
