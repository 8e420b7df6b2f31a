"""Dynamic batching: concurrent requests share one model call within a few milliseconds.

A :class:`DynamicBatcher` owns one worker thread in front of an :class:`EmbeddingEngine`. Callers submit a
waveform and get a :class:`concurrent.futures.Future`; the worker waits at most ``window_ms`` after the first
pending request for others to arrive (or until ``max_batch`` are pending), then embeds them with one
``embed_batch`` call. The queue is bounded: when ``max_queue`` requests are waiting, :meth:`submit` raises
:class:`BatcherFull` at once (backpressure) instead of letting memory grow. Requests are batched per sample rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.errors import ConfigError, VoiceAuthError

__all__ = ["BatcherClosed", "BatcherFull", "DynamicBatcher"]

log = logging.getLogger(__name__)


class BatcherFull(VoiceAuthError):
    """The embedding queue is at capacity; the caller should retry later (HTTP 503 at the API edge)."""

    code = "embedding-queue-full"


class BatcherClosed(VoiceAuthError):
    code = "embedding-batcher-closed"


@dataclass
class _Request:
    wav: FloatArray
    sample_rate: int
    telephone: bool = False
    future: Future[FloatArray] = field(default_factory=Future)

    @property
    def kind(self) -> tuple[int, bool]:
        """Requests share a model call only with requests of the same rate and band."""
        return self.sample_rate, self.telephone


class DynamicBatcher:
    """Bounded, time-windowed request batching in front of one engine. Thread-safe; use as a context manager."""

    def __init__(
        self,
        engine: EmbeddingEngine,
        window_ms: float = 3.0,
        max_batch: int = 16,
        max_queue: int = 256,
    ) -> None:
        if window_ms < 0:
            raise ConfigError(f"batching window {window_ms} ms is negative; use 0 or more milliseconds")
        if max_batch < 1 or max_queue < 1:
            raise ConfigError(f"max_batch {max_batch} and max_queue {max_queue} must both be at least 1")
        self.engine = engine
        self.window_s = window_ms / 1000.0
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.calls = 0  # model calls made (for metrics and tests)
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="embedding-batcher", daemon=True)
        self._worker.start()

    # -- public API -------------------------------------------------------------------------------------

    def submit(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> Future[FloatArray]:
        """Queue one waveform; the future resolves to its float32[dim] embedding (or the engine's error)."""
        req = _Request(np.asarray(wav, dtype=np.float32), sample_rate, telephone)
        with self._cond:
            if self._closed:
                raise BatcherClosed("the embedding batcher is closed; create a new one")
            if len(self._queue) >= self.max_queue:
                raise BatcherFull(f"embedding queue is full ({self.max_queue} requests waiting); retry later")
            self._queue.append(req)
            self._cond.notify()
        return req.future

    def embed(
        self, wav: FloatArray, sample_rate: int, timeout: float | None = None, *, telephone: bool = False
    ) -> FloatArray:
        """Blocking convenience: submit and wait."""
        return self.submit(wav, sample_rate, telephone=telephone).result(timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        """Stop accepting work, finish what is queued, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join()

    def __enter__(self) -> DynamicBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- worker ------------------------------------------------------------------------------------------

    def _take(self) -> list[_Request] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None  # closed and drained
            deadline = time.monotonic() + self.window_s
            while len(self._queue) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            kind = self._queue[0].kind
            batch: list[_Request] = []
            keep: deque[_Request] = deque()
            while self._queue:
                req = self._queue.popleft()
                if req.kind == kind and len(batch) < self.max_batch:
                    batch.append(req)
                else:
                    keep.append(req)
            self._queue.extendleft(reversed(keep))
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            live = [r for r in batch if r.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                self.calls += 1
                embs = self.engine.embed_batch([r.wav for r in live], live[0].sample_rate, telephone=live[0].telephone)
            except Exception as exc:  # one bad input must not fail its neighbours silently: retry one by one
                if len(live) == 1:
                    live[0].future.set_exception(exc)
                    continue
                log.info(
                    "batched embedding failed (%s); retrying %d requests one by one", type(exc).__name__, len(live)
                )
                for r in live:
                    try:
                        r.future.set_result(self.engine.embed(r.wav, r.sample_rate, telephone=r.telephone))
                    except Exception as one_exc:
                        r.future.set_exception(one_exc)
                continue
            for r, e in zip(live, embs, strict=True):
                r.future.set_result(e)
