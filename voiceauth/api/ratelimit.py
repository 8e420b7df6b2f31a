"""Per-key rate limiting: a token bucket per API key (pure; the clock is injected).

Each key may make ``burst`` requests at once and ``per_minute`` sustained. In-process: with several workers each
enforces its own budget (put a shared limiter in front for a hard global limit).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, now: Callable[[], float], max_keys: int = 100_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(f"rate limit {per_minute}/min with burst {burst} is not valid; both must be positive")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.now = now
        self.max_keys = max_keys
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: int) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds to wait before the next is available."""
        t = self.now()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                if len(self._buckets) >= self.max_keys:
                    self._buckets.clear()
                b = self._buckets[key] = _Bucket(self.burst, t)
            b.tokens = min(self.burst, b.tokens + max(0.0, t - b.at) * self.rate)
            b.at = t
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
