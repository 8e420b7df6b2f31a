"""The roofline's work count is the real network's, and its bound follows the backend's precision plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.roofline import ecapa_flops, frames_of, gemm_peak, precision_plan, roofline
from voiceauth.embedding.backends.fused import FusedEcapa
from voiceauth.embedding.backends.int8 import FP32_LAYERS
from voiceauth.embedding.ecapa import load_checkpoint


@pytest.mark.model
def test_counted_operations_are_those_torch_counts_on_the_real_model(model_dir: Path) -> None:
    model = FusedEcapa(load_checkpoint(model_dir / "embedding_model.ckpt")).eval()
    frames = frames_of(3 * 16000)
    assert frames == 301
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.randn(1, frames, 80))
    counted = sum(ecapa_flops(frames).values())
    # torch counts every matmul (the GEMMs and the small pooling / SE products): within 1% of the GEMM count
    assert counter.get_total_flops() == pytest.approx(counted, rel=0.01)
    assert counted == pytest.approx(10.8e9, rel=0.01)
    assert sum(ecapa_flops(frames, reference=True).values()) == pytest.approx(11.3e9, rel=0.01)


def test_the_bound_takes_each_layer_at_the_peak_of_its_precision() -> None:
    layers = ecapa_flops(301)
    plan = precision_plan("onnx-int8", layers)
    assert all(plan[n] == "fp32" for n in FP32_LAYERS) and plan["mfa"] == "int8" and plan["fc"] == "fp32"
    assert set(precision_plan("fused-fp32", layers).values()) == {"fp32"}
    peaks = {"fp32": 100.0, "int8": 400.0}
    r = roofline("onnx-int8", 301, 50.0, peaks)
    int8 = sum(f for n, f in layers.items() if plan[n] == "int8")
    fp32 = sum(layers.values()) - int8
    assert r["bound_ms"] == pytest.approx((int8 / 400e9 + fp32 / 100e9) * 1e3, rel=1e-3)
    assert r["roofline_fraction"] == pytest.approx(r["bound_ms"] / 50.0, abs=1e-3)
    assert r["precision"] == "int8" and r["share"]["int8"] == pytest.approx(int8 / (int8 + fp32), abs=1e-3)
    # a batch counts every utterance's work
    assert roofline("onnx-int8", [301, 301], 100.0, peaks)["gflops"] == pytest.approx(r["gflops"], rel=1e-3)


def test_gemm_peaks_are_measured_for_every_precision() -> None:
    for p in ("fp32", "bf16", "int8"):
        assert gemm_peak(p, n=256, repeats=1) > 0
