"""The digit recogniser in worker processes: the same digits as in the server's process, the server's threads free
while it decodes, and a dead worker costs no decision."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from voiceauth.audio.resample import resample
from voiceauth.errors import ConfigError
from voiceauth.liveness.process import ProcessDigits
from voiceauth.liveness.recognizer import PocketSphinxDigits, create_recognizer


@pytest.fixture(scope="module")
def pool() -> Any:
    p = ProcessDigits(processes=1)
    p.warm()
    yield p
    p.close()


def test_the_workers_hear_what_the_server_process_hears(pool: ProcessDigits, caller: Callable[..., Any]) -> None:
    local = PocketSphinxDigits()
    lucas = caller("lucas")
    for digits in ("40719", "862305"):
        audio = resample(lucas.say(digits), 8000, 16000)
        heard = pool.recognize(audio, 16000, len(digits))
        assert heard == local.recognize(audio, 16000, len(digits))
        assert len(heard.digits) == len(digits)


def test_other_threads_run_while_an_answer_is_decoded(pool: ProcessDigits, caller: Callable[..., Any]) -> None:
    """In the server's process PocketSphinx holds Python's lock for the whole answer (~0.1 s); in a worker the
    calling thread waits without it, so another thread keeps running (here: never paused for 50 ms)."""
    audio = resample(caller("george").say("5829173"[:6]), 8000, 16000)
    ticks: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.002)

    th = threading.Thread(target=tick)
    th.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    for _ in range(3):
        pool.recognize(audio, 16000, 6)
    t1 = time.perf_counter()
    stop.set()
    th.join()
    inside = [t for t in ticks if t0 <= t <= t1]
    gaps = np.diff([t0, *inside, t1])
    assert len(inside) > 10 and gaps.max() < 0.05, (len(inside), float(gaps.max()))


def test_a_dead_worker_costs_no_answer_and_the_pool_restarts(caller: Callable[..., Any]) -> None:
    p = ProcessDigits(processes=1)
    try:
        p.warm()
        audio = resample(caller("theo").say("3141"), 8000, 16000)
        expected = PocketSphinxDigits().recognize(audio, 16000, 4)
        pool = p._executor()
        for pid in list(pool._processes):  # the worker dies (killed, out of memory, a crash in the decoder)
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        assert p.recognize(audio, 16000, 4) == expected  # recognised in this process
        assert p._executor() is not pool
        assert p.recognize(audio, 16000, 4) == expected  # and by a new worker
    finally:
        p.close()


def test_bad_requests_are_refused_before_reaching_a_worker(pool: ProcessDigits) -> None:
    assert isinstance(create_recognizer(processes=0), PocketSphinxDigits)
    with pytest.raises(ConfigError, match="1 to 12 digits"):
        pool.recognize(np.zeros(16000, np.float32), 16000, 0)
    with pytest.raises(ConfigError, match="at least 1 process"):
        ProcessDigits(processes=0)
