"""Request time limit and the bounded audio queue: slow or piled-up requests get a 503 problem, not a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api, sample
from voiceauth.embedding.fake import FakeEngine


class SlowEngine(FakeEngine):
    """FakeEngine that takes ``delay_s`` per embedding (or waits for ``gate`` when given)."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.delay_s, self.gate = delay_s, gate

    def embed(self, wav: Any, sample_rate: int, *, telephone: bool = False) -> Any:
        if self.gate is not None:
            self.gate.wait(30)
        else:
            time.sleep(self.delay_s)
        return super().embed(wav, sample_rate)


def test_request_time_limit(api_factory: Callable[..., Api]) -> None:
    """A request still queued at its time limit gets 503 and its work never runs; one whose work has started
    (it writes to the store) is not cut off: its client gets the real result."""
    from voiceauth.store.models import EnrollmentUtterance

    gate = threading.Event()
    api = api_factory(engine=SlowEngine(gate=gate), api_request_timeout_s=1.0, api_audio_workers=1)
    api.register("cust-1")
    first: list[Any] = []
    running = threading.Thread(target=lambda: first.append(api.enroll("cust-1", sample("george_a"))))
    running.start()  # takes the only audio thread and waits on the gate, past its own time limit
    time.sleep(0.3)
    r = api.enroll("cust-1", sample("george_b"))  # queued behind it: refused at 1 s
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "request-timeout"
    gate.set()
    running.join(30)
    assert first[0].status_code == 200 and first[0].json()["accepted"]
    # the refused request's work never ran: only the first utterance is stored, and the service keeps answering
    assert api.store.count_rows(EnrollmentUtterance) == 1
    assert api.client.get("/v1/speakers/cust-1", headers=api.h("acme:telephony")).status_code == 200


def test_audio_queue_is_bounded(api_factory: Callable[..., Api]) -> None:
    gate = threading.Event()
    api = api_factory(engine=SlowEngine(gate=gate), api_audio_workers=1, api_max_queued_audio=1)
    api.register("cust-1")
    results: list[int] = []

    def call() -> None:
        results.append(api.enroll("cust-1", sample("george_a")).status_code)

    threads = [threading.Thread(target=call) for _ in range(2)]  # one runs, one waits: the queue is full
    for t in threads:
        t.start()
    svc = api.client.app.state.services  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while svc._waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    r = api.enroll("cust-1", sample("george_a"))
    assert r.status_code == 503 and r.json()["code"] == "busy" and r.headers["retry-after"] == "1"
    gate.set()
    for t in threads:
        t.join(30)
    assert results == [200, 200]
