"""What the HTTP layer needs at hand: the pipeline, the store, limits and metrics, and the threads audio runs on.

Routes only translate HTTP to these calls. Everything that touches audio (front end, engine) runs on a bounded
thread pool (``api_audio_workers``), never on the event loop; when more than ``api_max_queued_audio`` audio
requests wait, new ones get 503 at once instead of piling up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import text

from voiceauth.api.metrics import ApiMetrics
from voiceauth.api.middleware import guarded
from voiceauth.api.problems import ApiProblem
from voiceauth.api.ratelimit import build_auth_failure_limiter, build_limiter
from voiceauth.audio.frontend import FrontEnd, require_speech
from voiceauth.audio.types import Utterance
from voiceauth.config import Settings
from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.errors import ModelError
from voiceauth.pipeline import FrontEndLike, Pipeline
from voiceauth.scoring.base import Scorer
from voiceauth.store.crypto import key_file_path, load_keyring
from voiceauth.store.db import single_connect_attempt
from voiceauth.store.keys import ApiPrincipal, authenticate
from voiceauth.store.repo import Clock, Store

__all__ = ["AppServices", "TimedEngine"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class TimedEngine:
    """An engine wrapper that records model latency (the wrapped engine is what the pipeline embeds with)."""

    def __init__(self, engine: EmbeddingEngine, metrics: ApiMetrics) -> None:
        self.inner = engine
        self.metrics = metrics
        self.dim = getattr(engine, "dim", 192)
        self.precision = getattr(engine, "precision", "")
        self.device = getattr(engine, "device", "")
        if hasattr(engine, "telephone_adapter"):  # the network of its telephone-band embeddings (embedding.space)
            self.telephone_adapter = engine.telephone_adapter

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        t0 = time.perf_counter()
        try:
            return self.inner.embed(wav, sample_rate, telephone=telephone)
        finally:
            self.metrics.model_latency.observe(time.perf_counter() - t0)

    def embed_batch(self, wavs: Sequence[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        """One model call for the batch, timed as one."""
        t0 = time.perf_counter()
        try:
            return np.asarray(self.inner.embed_batch(wavs, sample_rate, telephone=telephone), dtype=np.float32)
        finally:
            self.metrics.model_latency.observe(time.perf_counter() - t0)


class AppServices:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock,
        engine: EmbeddingEngine | None,
        scorer: Scorer | None,
        operating_points: dict[str, float] | None,
        frontend: FrontEndLike | None,
        owns_store: bool,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = ApiMetrics()
        self.frontend: FrontEndLike = frontend or FrontEnd(settings)
        self._scorer = scorer
        self._operating_points = operating_points
        self.owns_store = owns_store
        self.limiter = build_limiter(settings, store.engine, now=lambda: clock().timestamp())
        # invalid API keys, per client address (monotonic time: a frozen test clock must not stop the refill)
        self.auth_failures = build_auth_failure_limiter(settings, now=time.monotonic)
        self.executor = ThreadPoolExecutor(max_workers=settings.api_audio_workers, thread_name_prefix="voiceauth-audio")
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        # baseline taken now, when the store's keyring was just loaded: a rotation at any later moment is seen
        self._key_mtime: float | None = self._key_file_mtime()
        if engine is not None:
            self.attach_engine(engine)

    # -- wiring ------------------------------------------------------------------------------------------
    def attach_engine(self, engine: EmbeddingEngine) -> None:
        self._pipeline = Pipeline.from_settings(
            self.settings,
            engine=TimedEngine(engine, self.metrics),
            scorer=self._scorer,
            operating_points=self._operating_points,
            store=self.store,
            frontend=self.frontend,
            clock=self.clock,
        )
        self.metrics.model_loaded.set(1)

    def load_engine(self) -> None:
        """Load the configured engine (blocking; the app's lifespan runs it on a thread)."""
        from voiceauth.embedding.factory import create_engine

        self.attach_engine(create_engine(self.settings))
        log.info("speaker model loaded")

    @property
    def model_loaded(self) -> bool:
        return self._pipeline is not None

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise ModelError("the speaker model is still loading")
        return self._pipeline

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self._pipeline is not None:  # monitor-mode spoof scores still being computed get a short while
            self._pipeline.settle_spoof(timeout_s=10.0)
        if self.owns_store:
            self.store.dispose()

    # -- data keys: pick up a rotated key file without a restart -------------------------------------------
    def _key_file_mtime(self) -> float | None:
        if self.settings.data_key is not None:
            return None
        try:
            return key_file_path(self.settings).stat().st_mtime
        except OSError:
            return None

    def reload_keys_if_changed(self) -> bool:
        mtime = self._key_file_mtime()
        if mtime is None:
            return False
        path = key_file_path(self.settings)
        if self._key_mtime is None:
            self._key_mtime = mtime
            return False
        if mtime == self._key_mtime:
            return False
        self._key_mtime = mtime
        self.store.keyring = load_keyring(self.settings)
        log.warning("data keys reloaded from %s (active key id %s)", path, self.store.keyring.active_id)
        return True

    # -- health --------------------------------------------------------------------------------------------
    def store_reachable(self) -> bool:
        try:
            with single_connect_attempt(), self.store.engine.connect() as conn:  # no backoff: answer now
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - readiness reports any failure as "not ready"
            log.warning("store not reachable", exc_info=True)
            return False

    # -- auth ----------------------------------------------------------------------------------------------
    def authenticate(self, key: str) -> ApiPrincipal | None:
        with self.store.transaction() as tx:
            return authenticate(tx, key)

    # -- audio work on the bounded pool ------------------------------------------------------------------
    async def run_audio(self, fn: Callable[..., T], *args: Any) -> T:
        with self._waiting_lock:
            if self._waiting >= self.settings.api_max_queued_audio + self.settings.api_audio_workers:
                raise ApiProblem(
                    503, "busy", "too many audio requests are in progress; retry shortly", headers={"Retry-After": "1"}
                )
            self._waiting += 1
        try:
            work = guarded(fn)  # a request timed out while queued does not run; once running, it is not timed out
            return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: work(*args))
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def utterance(self, data: bytes, decode: dict[str, Any]) -> Utterance:
        """Front end with timing; silence, tones and noise without speech raise NoSpeech (422)."""
        t0 = time.perf_counter()
        try:
            utt = self.pipeline.utterance(data, **decode)
        finally:
            self.metrics.frontend_latency.observe(time.perf_counter() - t0)
        return require_speech(utt)
