"""MonitorScorer: monitor-mode uploads are scored after the decision, on one thread, with a bounded backlog.

The countermeasure and the verifier are stand-ins here (this is about queueing, not about AASIST's scores; the
real network in monitor mode is covered by tests/test_pipeline_spoof.py)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from voiceauth.antispoof.countermeasure import SpoofResult
from voiceauth.antispoof.monitor import MonitorScorer


class _GatedCountermeasure:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.scored = 0

    def score(self, audio: np.ndarray) -> SpoofResult:
        self.gate.wait(10.0)
        self.scored += 1
        s = float(audio.mean())
        return SpoofResult(score=s, windows=(s,), is_spoof=s >= 0.0, threshold=0.0)


class _RecordingVerifier:
    def __init__(self, fail_on: int | None = None) -> None:
        self.recorded: list[tuple[str, int, Any]] = []
        self.fail_on = fail_on

    def record_spoof(self, tenant: str, attempt_id: int, spoof: Any) -> None:
        if attempt_id == self.fail_on:
            raise RuntimeError("database went away")
        self.recorded.append((tenant, attempt_id, spoof))


def test_scores_after_the_decision_and_drops_beyond_the_backlog() -> None:
    cm, ver = _GatedCountermeasure(), _RecordingVerifier()
    mon = MonitorScorer(cm, ver, max_pending=2)  # type: ignore[arg-type]
    assert mon.submit("acme", 1, np.full(16_000, 1.0, np.float32))
    assert mon.submit("acme", 2, np.full(16_000, -1.0, np.float32))
    assert not mon.submit("acme", 3, np.zeros(16_000, np.float32))  # backlog full: not scored, not queued
    assert mon.dropped == 1 and mon.submitted == 2 and not mon.settle(timeout_s=0.05)
    cm.gate.set()
    assert mon.settle(timeout_s=10.0)
    assert [(t, a) for t, a, _ in ver.recorded] == [("acme", 1), ("acme", 2)]
    first, second = ver.recorded[0][2], ver.recorded[1][2]
    assert first.suspected and first.reason == "synthetic" and not first.enforced  # monitor: never enforced
    assert not second.suspected and second.score == -1.0
    assert mon.submit("acme", 4, np.zeros(16_000, np.float32))  # slots are given back
    assert mon.settle(timeout_s=10.0) and len(ver.recorded) == 3
    mon.close()


def test_a_failure_to_record_is_logged_and_frees_its_slot() -> None:
    cm, ver = _GatedCountermeasure(), _RecordingVerifier(fail_on=7)
    cm.gate.set()
    mon = MonitorScorer(cm, ver, max_pending=1)  # type: ignore[arg-type]
    assert mon.submit("acme", 7, np.zeros(16_000, np.float32))
    assert mon.settle(timeout_s=10.0) and ver.recorded == []
    assert mon.submit("acme", 8, np.zeros(16_000, np.float32))
    assert mon.settle(timeout_s=10.0) and [a for _, a, _ in ver.recorded] == [8]
    mon.close()
