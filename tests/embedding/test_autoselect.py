"""``auto`` by measurement: the decision (injected timings), the cache key and its reuse, the real calibration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voiceauth.embedding import autoselect
from voiceauth.embedding.autoselect import Trial, choose, select
from voiceauth.embedding.fake import FakeEngine


def test_the_fastest_candidate_that_passes_the_guard_wins() -> None:
    trials = [
        Trial("openvino-int8", ms=40.0, cosine_min=0.9985),  # fastest, but under the guard
        Trial("onnx-int8", ms=55.0, cosine_min=0.9995),
        Trial("fused-int8", ms=50.0, cosine_min=0.9996),
        Trial("openvino-bf16", error="ConfigError: not installed"),
    ]
    backend, reason = choose(trials, fallback="fused-int8")
    assert backend == "fused-int8"
    assert "fused-int8 50.0 ms" in reason and "onnx-int8 55.0 ms" in reason
    assert "openvino-int8 (cosine 0.9985)" in reason and "openvino-bf16 (ConfigError" in reason
    # ties keep the candidates' order; nothing measured -> the static fallback
    assert choose([Trial("a", ms=10.0, cosine_min=1.0), Trial("b", ms=10.0, cosine_min=1.0)], "x")[0] == "a"
    assert choose([Trial("a", error="boom")], "fused-int8")[0] == "fused-int8"


class _Clock:
    """A fake clock: each engine's calls advance it by that engine's cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Timed(FakeEngine):
    def __init__(self, clock: _Clock, cost_s: float, noise: float = 0.0) -> None:
        super().__init__()
        self.clock, self.cost_s, self.noise = clock, cost_s, noise

    def embed(self, wav: Any, sample_rate: int, *, telephone: bool = False) -> Any:
        self.clock.now += self.cost_s
        out = np.asarray(super().embed(wav, sample_rate, telephone=telephone))
        if self.noise:
            out = out + self.noise * np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
        return out


@pytest.fixture
def _restore_current() -> Iterator[None]:
    before = autoselect._current
    yield
    autoselect._current = before


@pytest.mark.usefixtures("_restore_current")
def test_selection_is_measured_once_then_cached_per_key(tmp_path: Path) -> None:
    clock = _Clock()
    costs = {"openvino-int8": 0.030, "onnx-int8": 0.050, "fused-int8": 0.045}
    built: list[str] = []

    def build(name: str) -> Any:
        built.append(name)
        return _Timed(clock, costs[name], noise=0.2 if name == "openvino-int8" else 0.0)

    speech = [np.sin(np.linspace(0, 300 * (i + 1), 24_000)).astype(np.float32) for i in range(3)]

    def reference() -> Any:
        return FakeEngine().embed_batch(speech, 8000)

    parts = {"cpu": "test cpu", "threads": 1, "candidates": list(costs), "versions": {"torch": "x"}}
    sel, engine = select(parts, tmp_path, build, reference, speech, 8000, fallback="fused-int8", clock=clock)
    assert sel.method == "measured" and sel.backend == "fused-int8"  # openvino-int8 is faster but fails the guard
    assert engine is not None and built == list(costs)
    trial = {t.backend: t for t in sel.trials}
    assert trial["fused-int8"].ms == pytest.approx(45.0) and trial["onnx-int8"].ms == pytest.approx(50.0)
    assert (trial["openvino-int8"].cosine_min or 1.0) < autoselect.GUARD_COSINE
    assert autoselect.current_selection() == sel
    stored = autoselect.calibration_file(tmp_path, parts)
    assert stored.is_file()

    # the same key: the stored choice, nothing built or timed
    built.clear()
    again, engine = select(parts, tmp_path, build, reference, speech, 8000, fallback="fused-int8", clock=clock)
    assert again.method == "cached" and again.backend == "fused-int8" and engine is None and built == []
    assert again.reason == sel.reason and again.trials == sel.trials

    # another CPU, thread count or library version is another key: measured again
    for change in ({"cpu": "other cpu"}, {"threads": 2}, {"versions": {"torch": "y"}}):
        other = {**parts, **change}
        assert autoselect.calibration_key(other) != autoselect.calibration_key(parts)
        built.clear()
        fresh, _ = select(other, tmp_path, build, reference, speech, 8000, fallback="fused-int8", clock=clock)
        assert fresh.method == "measured" and built == list(costs)


def test_the_timing_budget_bounds_the_calibration(tmp_path: Path) -> None:
    clock = _Clock()
    speech = [np.ones(8000, dtype=np.float32)]
    trials, engines = autoselect.measure(
        ["a", "b", "c"],
        lambda name: _Timed(clock, 1.0),
        FakeEngine().embed_batch(speech, 8000),
        speech,
        8000,
        repeats=1,
        budget_s=3.0,
        clock=clock,
    )
    # one warm-up + one timed call of 1 s each: a and b spend 4 s > 3 s, so c is skipped
    assert [t.ms is not None for t in trials] == [True, True, False]
    assert "budget" in (trials[2].error or "") and set(engines) == {"a", "b"}


def test_key_names_the_cpu_threads_and_library_versions() -> None:
    parts = autoselect.key_parts("abc", 1, ["fused-int8"])
    assert parts["cpu"] and parts["threads"] == 1 and parts["weights"] == "abc"
    assert {"torch", "onnxruntime", "openvino"} <= set(parts["versions"])


@pytest.mark.model
@pytest.mark.usefixtures("_restore_current")
def test_auto_calibrates_on_the_real_model_and_reports_its_choice(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voiceauth.config import Settings
    from voiceauth.embedding import factory

    settings = Settings(model_dir=model_dir, num_threads=1, offline=True)
    speech = factory.calibration_speech()
    assert len(speech) >= 3  # the bundled recordings
    calls: list[str] = []
    real_select = autoselect.select

    def spy(parts: Any, cache_dir: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(cache_dir))
        return real_select(parts, tmp_path, *args, **kwargs)  # a fresh cache: this test measures

    monkeypatch.setattr(factory.autoselect, "select", spy)
    engine = factory.create_engine(settings, fetch=False)
    sel = autoselect.current_selection()
    assert sel is not None and sel.method == "measured" and calls
    assert sel.backend in autoselect.CANDIDATES and type(engine).__name__ in (
        "OpenVinoEngine",
        "OnnxEngine",
        "FusedEngine",
    )
    passed = [t for t in sel.trials if t.ms is not None]
    assert passed and all((t.cosine_min or 0) >= 0.99 for t in passed)
    chosen = next(t for t in sel.trials if t.backend == sel.backend)
    assert (chosen.cosine_min or 0) >= autoselect.GUARD_COSINE
    assert chosen.ms == min(t.ms for t in passed if (t.cosine_min or 0) >= autoselect.GUARD_COSINE)  # type: ignore[type-var]


@pytest.mark.usefixtures("_restore_current")
def test_metrics_report_the_backend_and_why() -> None:
    from voiceauth.api.metrics import ApiMetrics

    autoselect._current = None
    assert b"voiceauth_embedding_backend_info{" not in ApiMetrics().render()
    autoselect.note_static("fused-int8", "configured")
    text = ApiMetrics().render().decode()
    assert 'voiceauth_embedding_backend_info{backend="fused-int8",method="static",reason="configured"} 1.0' in text


@pytest.mark.model
def test_models_info_reports_the_stored_calibration(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from voiceauth.cli import app
    from voiceauth.config import get_settings

    monkeypatch.setenv("VOICEAUTH_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("VOICEAUTH_BACKEND", "fused-int8")
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(app, ["models", "info", "--json"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)["embedding_backend"]
    assert info == {"backend": "fused-int8", "method": "static", "reason": "configured backend / precision / device"}
