"""Monitor-mode AASIST scoring of uploads, after the decision.

In ``antispoof_mode=monitor`` the spoof score never changes a decision, so an upload need not wait for it: the
verification answers as soon as the voice is scored, and the countermeasure scores the attempt's speech on one
background thread, then records the score on the attempt and in the audit (``verify.spoof``, as streams do in
monitor mode). The backlog is bounded: when ``max_pending`` attempts are already waiting, a new attempt is not
scored (logged) rather than queueing unbounded audio in memory. ``enforce`` mode does not use this: there the
decision waits for the score.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voiceauth.antispoof.countermeasure import Countermeasure
    from voiceauth.embedding.base import FloatArray
    from voiceauth.verification import Verifier

__all__ = ["MonitorScorer"]

log = logging.getLogger(__name__)


class MonitorScorer:
    """Scores decided upload attempts in the background and records the scores (see the module docstring)."""

    def __init__(self, countermeasure: Countermeasure, verifier: Verifier, *, max_pending: int = 16) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.countermeasure = countermeasure
        self.verifier = verifier
        self._slots = threading.BoundedSemaphore(max_pending)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="antispoof-monitor")
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self.submitted = 0  # attempts queued for scoring
        self.dropped = 0  # attempts not scored because the backlog was full

    def submit(self, tenant: str, attempt_id: int, audio_16k: FloatArray) -> bool:
        """Queue the attempt's speech (16 kHz, pauses kept) for scoring; False when the backlog is full."""
        if not self._slots.acquire(blocking=False):
            self.dropped += 1
            log.warning("antispoof: monitor backlog full; attempt %s of tenant %s not scored", attempt_id, tenant)
            return False
        try:
            fut = self._pool.submit(self._score, tenant, attempt_id, audio_16k)
        except RuntimeError:  # the pool is shut down (service stopping)
            self._slots.release()
            return False
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._forget)
        self.submitted += 1
        return True

    def settle(self, timeout_s: float | None = 60.0) -> bool:
        """Wait until every queued attempt is scored and recorded; False if some are still pending at the timeout."""
        with self._lock:
            pending = set(self._pending)
        if not pending:
            return True
        _, not_done = wait(pending, timeout=timeout_s)
        return not not_done

    def close(self) -> None:
        """Stop taking attempts; queued ones are still scored."""
        self._pool.shutdown(wait=False)

    def _forget(self, fut: Future[None]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def _score(self, tenant: str, attempt_id: int, audio_16k: FloatArray) -> None:
        from voiceauth.antispoof.stream import spoof_outcome

        try:
            result = self.countermeasure.score(audio_16k)
            self.verifier.record_spoof(tenant, attempt_id, spoof_outcome(result, "monitor"))
        except Exception:  # noqa: BLE001 - a monitor score must never break the service
            log.exception("antispoof: could not score or record attempt %s of tenant %s", attempt_id, tenant)
        finally:
            self._slots.release()
