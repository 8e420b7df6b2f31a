"""A digit recogniser that runs in worker processes, so recognising an answer never stalls the server's threads.

PocketSphinx's ``process_raw`` holds Python's GIL for the whole utterance (about 100 ms for a 4 s answer on one
core): run on a server thread, it stops the event loop and every other call's audio for that long. This wrapper
sends the audio to a small pool of spawned processes, each with its own recogniser, and waits for the digits (the
waiting thread releases the GIL). Same answers as the recogniser it wraps: the worker runs exactly that recogniser.

If a worker dies, the pool is started again for the next answer and this one is recognised in this process (slower
for the other calls, never a lost decision).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from voiceauth.embedding.base import FloatArray
from voiceauth.errors import ConfigError
from voiceauth.liveness.recognizer import DigitRecognizer, Heard, create_recognizer

__all__ = ["ProcessDigits"]

log = logging.getLogger(__name__)

_WORKER: DigitRecognizer | None = None  # the recogniser of this worker process


def _start_worker(name: str) -> None:
    global _WORKER
    _WORKER = create_recognizer(name)


def _recognize(speech: FloatArray, sample_rate: int, n_digits: int) -> Heard:
    assert _WORKER is not None, "worker started without its recogniser"
    return _WORKER.recognize(speech, sample_rate, n_digits)


def _ready() -> bool:
    return _WORKER is not None


class ProcessDigits:
    """:class:`~voiceauth.liveness.recognizer.DigitRecognizer` ``name`` run in ``processes`` spawned processes."""

    def __init__(self, name: str = "pocketsphinx", *, processes: int = 1) -> None:
        if processes < 1:
            raise ConfigError(f"a recogniser pool needs at least 1 process, not {processes}")
        self.name = name
        self.processes = processes
        self._local = create_recognizer(name)  # fails now on a missing package or model; used if a worker dies
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._in_process = False  # workers cannot be started here (e.g. a daemonic process): recognise locally
        threading.Thread(target=self._warm_quietly, name="recogniser-start", daemon=True).start()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=mp.get_context("spawn"),  # never fork a threaded server
                    initializer=_start_worker,
                    initargs=(self.name,),
                )
            return self._pool

    def warm(self) -> None:
        """Start the workers now (a spawned process takes a second or two), not on the first caller's answer."""
        if self._in_process:
            return
        pool = self._executor()
        for f in [pool.submit(_ready) for _ in range(self.processes)]:
            f.result()

    def _warm_quietly(self) -> None:
        try:
            self.warm()
        except (AssertionError, OSError) as exc:
            self._no_workers(exc)
        except Exception:  # noqa: BLE001 - a failed start is retried (and reported) by the first recognition
            log.warning("the digit recogniser processes did not start; retried on the first answer", exc_info=True)

    def _no_workers(self, exc: BaseException) -> None:
        """No child processes can be started here (e.g. a daemonic process): every answer in this process."""
        log.warning("digit recogniser processes cannot start here (%s); recognising in the server process", exc)
        self._in_process = True

    def recognize(self, speech: FloatArray, sample_rate: int, n_digits: int) -> Heard:
        if not 1 <= n_digits <= 12:
            raise ConfigError(f"a digit string of {n_digits} digits cannot be recognised; use 1 to 12 digits")
        audio = np.ascontiguousarray(speech, dtype=np.float32)
        if self._in_process:
            return self._local.recognize(audio, sample_rate, n_digits)
        pool = self._executor()
        try:
            return pool.submit(_recognize, audio, sample_rate, n_digits).result()
        except (AssertionError, OSError) as exc:
            self._no_workers(exc)
            return self._local.recognize(audio, sample_rate, n_digits)
        except BrokenProcessPool:  # found dead at submit or while decoding
            log.error("a digit recogniser process died; this answer is recognised in the server, the pool restarts")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return self._local.recognize(audio, sample_rate, n_digits)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
