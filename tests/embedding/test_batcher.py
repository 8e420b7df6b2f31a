"""Dynamic batching: requests within the window share one model call; a full queue pushes back."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from voiceauth.embedding.base import FloatArray
from voiceauth.embedding.batcher import BatcherClosed, BatcherFull, DynamicBatcher
from voiceauth.embedding.fake import FakeEngine
from voiceauth.errors import ConfigError, EmbeddingError


class GatedEngine(FakeEngine):
    """FakeEngine that records batch sizes and can be held inside a model call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def embed_batch(self, wavs: Sequence[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        self.entered.set()
        self.gate.wait(5)
        self.batches.append(len(wavs))
        return super().embed_batch(wavs, sample_rate)

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        if not np.all(np.isfinite(wav)):
            raise EmbeddingError("waveform contains NaN or Inf samples")
        return super().embed(wav, sample_rate)


def _wav(seed: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal(4000).astype(np.float32)


def test_concurrent_requests_share_one_call_and_get_their_own_embedding() -> None:
    eng = GatedEngine()
    eng.gate.clear()
    with DynamicBatcher(eng, window_ms=50, max_batch=8) as b:
        first = b.submit(_wav(0), 8000)
        assert eng.entered.wait(5)  # the worker is inside call 1; the next six queue up meanwhile
        futures = [b.submit(_wav(i), 8000) for i in range(1, 7)]
        eng.gate.set()
        results = [first.result(5), *[f.result(5) for f in futures]]
    assert eng.batches == [1, 6]
    for i, r in enumerate(results):
        assert np.array_equal(r, FakeEngine().embed(_wav(i), 8000))


def test_full_queue_raises_backpressure_error_instead_of_growing() -> None:
    eng = GatedEngine()
    eng.gate.clear()
    with DynamicBatcher(eng, window_ms=0, max_batch=1, max_queue=2) as b:
        running = b.submit(_wav(0), 8000)
        assert eng.entered.wait(5)
        queued = [b.submit(_wav(1), 8000), b.submit(_wav(2), 8000)]
        with pytest.raises(BatcherFull, match="2 requests waiting"):
            b.submit(_wav(3), 8000)
        assert b.pending == 2
        eng.gate.set()
        assert all(f.result(5).shape == (192,) for f in [running, *queued])


def test_a_bad_request_fails_alone_and_rates_are_not_mixed() -> None:
    eng = GatedEngine()
    eng.gate.clear()
    with DynamicBatcher(eng, window_ms=20, max_batch=8) as b:
        hold = b.submit(_wav(0), 8000)
        assert eng.entered.wait(5)
        good = b.submit(_wav(1), 8000)
        bad = b.submit(np.full(4000, np.nan, dtype=np.float32), 8000)
        other_rate = b.submit(_wav(2), 16000)
        eng.gate.set()
        assert hold.result(5).shape == (192,)
        assert good.result(5).shape == (192,)
        assert other_rate.result(5).shape == (192,)
        with pytest.raises(EmbeddingError, match="NaN"):
            bad.result(5)


def test_closed_batcher_refuses_work_and_bad_settings_are_refused() -> None:
    b = DynamicBatcher(FakeEngine())
    assert b.embed(_wav(0), 8000, timeout=5).shape == (192,)
    b.close()
    with pytest.raises(BatcherClosed):
        b.submit(_wav(1), 8000)
    with pytest.raises(ConfigError, match="negative"):
        DynamicBatcher(FakeEngine(), window_ms=-1)
    with pytest.raises(ConfigError, match="at least 1"):
        DynamicBatcher(FakeEngine(), max_queue=0)
