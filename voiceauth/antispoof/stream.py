"""Anti-spoofing on call streams: AASIST windows scored as speech arrives, batched across calls on one worker.

A call's speech span (the streaming front end's 16 kHz audio from the first speech onset on, pauses kept: AASIST
scores VAD-concatenated speech as spoof-like) is cut into ~4 s windows as it arrives: window
``i`` starts ``i * hop`` samples into the speech and is submitted as soon as it is complete, up to ``max_windows``
per call (``Settings.antispoof_stream_windows``), so the CPU a call costs is bounded (~12 GFLOP per window). If the
voice decision comes before the first window is complete (a stream may decide at 2 s of speech), the speech so far
is tiled to one window at that moment. :class:`WindowBatcher` scores the windows of all calls on one worker thread,
several in one forward pass when they queue up.

At the decision, ``enforce`` waits for the call's windows (the decision must include the spoof verdict);
``monitor`` does not wait: a score that is ready goes into the decision's record, one that is not is recorded on the
attempt and audited when it arrives (:meth:`CallSpoof.settle`), so the voice decision is never delayed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np
import numpy.typing as npt

from voiceauth.antispoof.check import Mode, check_mode
from voiceauth.antispoof.countermeasure import Countermeasure, SpoofResult
from voiceauth.antispoof.windows import tile_to
from voiceauth.embedding.base import FloatArray
from voiceauth.verification import SpoofOutcome, VerificationResult, Verifier

__all__ = ["CallSpoof", "WindowBatcher", "spoof_outcome"]

log = logging.getLogger(__name__)

_Item = tuple[npt.NDArray[np.float32], "Future[float]"]


class WindowBatcher:
    """One worker thread that scores AASIST windows submitted by many calls, up to ``max_batch`` per forward pass.

    Thread-safe; the worker starts with the first window and ends with :meth:`close`."""

    def __init__(self, cm: Countermeasure, max_batch: int = 4) -> None:
        self.cm = cm
        self.max_batch = max(1, int(max_batch))
        self._q: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.windows_scored = 0
        self.batches = 0

    def submit(self, window: FloatArray) -> Future[float]:
        """Queue one window (exactly ``cm.window`` samples at 16 kHz); its future resolves to the spoof log-odds."""
        x = np.ascontiguousarray(window, dtype=np.float32)
        if x.shape != (self.cm.window,):
            raise ValueError(f"a window must be {self.cm.window} samples, got shape {x.shape}")
        fut: Future[float] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the anti-spoofing batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="antispoof", daemon=True)
                self._thread.start()
        self._q.put((x, fut))
        return fut

    def close(self, timeout: float | None = 10.0) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._q.put(None)
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            live = [(w, f) for w, f in batch if f.set_running_or_notify_cancel()]
            if live:
                try:
                    scores = self.cm.score_windows(np.stack([w for w, _ in live]))
                except Exception as exc:  # noqa: BLE001 - handed to every waiting call
                    for _, f in live:
                        f.set_exception(exc)
                else:
                    for (_, f), s in zip(live, scores, strict=True):
                        f.set_result(float(s))
                    self.windows_scored += len(live)
                    self.batches += 1
            if stop:
                return


def spoof_outcome(result: SpoofResult, mode: Mode) -> SpoofOutcome:
    """The verifier's view of an AASIST result (no replay check on streams): enforced only in ``enforce`` mode."""
    return SpoofOutcome(
        suspected=result.is_spoof,
        enforced=mode == "enforce",
        score=result.score,
        reason="synthetic" if result.is_spoof else None,
        threshold=result.threshold,
    )


class CallSpoof:
    """One call's AASIST scoring (see the module docstring). Feed it from the call's thread; not thread-safe."""

    def __init__(self, batcher: WindowBatcher, *, mode: str, max_windows: int = 2, timeout_s: float = 30.0) -> None:
        self.batcher = batcher
        self.mode = check_mode(mode)
        if self.mode == "off":
            raise ValueError("CallSpoof needs mode monitor or enforce; pass no CallSpoof when anti-spoofing is off")
        self.max_windows = max(1, int(max_windows))
        self.timeout_s = timeout_s
        self._futures: list[Future[float]] = []
        self._next_end = batcher.cm.window  # speech samples needed for the next window
        self._late: Future[SpoofResult] | None = None
        self.waited_ms = 0.0  # how long the decision waited for AASIST (enforce mode): the added decision latency

    @property
    def windows_submitted(self) -> int:
        return len(self._futures)

    def observe(self, speech_samples: int, speech: Callable[[], FloatArray]) -> None:
        """After each chunk: ``speech_samples`` of net speech so far; ``speech()`` gives them (called only when a
        window is complete)."""
        if len(self._futures) >= self.max_windows or speech_samples < self._next_end:
            return
        x = speech()
        w, hop = self.batcher.cm.window, self.batcher.cm.hop
        while len(self._futures) < self.max_windows and self._next_end <= x.size:
            self._futures.append(self.batcher.submit(x[self._next_end - w : self._next_end]))
            self._next_end += hop

    def result(self, speech: FloatArray) -> SpoofResult | None:
        """At the voice decision: the call's AASIST result. ``enforce`` waits for the call's windows; ``monitor``
        returns None when they are not all scored yet (:meth:`settle` records them later)."""
        if not self._futures:
            if speech.size == 0:
                return None
            self._futures.append(self.batcher.submit(tile_to(speech, self.batcher.cm.window)))
        if self.mode == "enforce":
            t0 = time.perf_counter()
            scores = [f.result(timeout=self.timeout_s) for f in self._futures]
            self.waited_ms = (time.perf_counter() - t0) * 1000.0
        elif all(f.done() for f in self._futures):
            scores = [f.result() for f in self._futures]
        else:
            self._late = self._pooled_later()
            return None
        return self.batcher.cm.decide(scores)

    def settle(self, result: VerificationResult, verifier: Verifier, tenant: str) -> None:
        """After the decision: in monitor mode, record a score that was not ready on the attempt when it arrives."""
        late, self._late = self._late, None
        if late is None or result.attempt_id is None or result.score is None or result.spoof_reason == "replay":
            return  # nothing pending, the voice was never scored (locked out, not enrolled, ...), or a replay
        attempt_id, mode = result.attempt_id, self.mode

        def record(done: Future[SpoofResult]) -> None:
            try:
                verifier.record_spoof(tenant, attempt_id, spoof_outcome(done.result(), mode))
            except Exception:  # noqa: BLE001 - a late monitor score must never break the call
                log.exception("antispoof: could not record the late spoof score of attempt %s", attempt_id)

        late.add_done_callback(record)

    def _pooled_later(self) -> Future[SpoofResult]:
        out: Future[SpoofResult] = Future()
        futures, cm = list(self._futures), self.batcher.cm
        remaining = [len(futures)]
        lock = threading.Lock()

        def one_done(_f: Future[float]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            try:
                out.set_result(cm.decide([f.result() for f in futures]))
            except Exception as exc:  # noqa: BLE001
                out.set_exception(exc)

        for f in futures:
            f.add_done_callback(one_done)
        return out
