"""The OpenVINO backend computes the fp32 network's embeddings within the guard (optional packages: skipped)."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import FSDD_SPEAKERS, fsdd_string
from voiceauth.audio.codecs import mulaw_decode, mulaw_encode
from voiceauth.embedding.backends import FusedEngine, create_backend
from voiceauth.embedding.backends import openvino as ov_mod
from voiceauth.embedding.base import EmbeddingEngine, cosine
from voiceauth.embedding.precision import cpu_has_bf16
from voiceauth.errors import ConfigError

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def ov_int8(model_dir: Path) -> EmbeddingEngine:
    if not ov_mod.openvino_available():
        pytest.skip("openvino/nncf/onnx/onnxscript are not installed (optional: voiceauth[openvino])")
    # the IR is cached beside the model: converted once (~20 s), loaded afterwards
    return create_backend("openvino-int8", model_dir, device="cpu", verify=False, num_threads=1)


def test_openvino_int8_holds_the_guard_and_batches(ov_int8: EmbeddingEngine, fsdd_dir: Path) -> None:
    assert isinstance(ov_int8, ov_mod.OpenVinoEngine) and ov_int8.ir_path.is_file()
    assert ov_int8.ir_path.with_suffix(".bin").is_file()
    model_dir = ov_int8.ir_path.parent.parent / ov_int8.ir_path.parent.name.removesuffix("-openvino")
    fused = FusedEngine(model_dir, mode="fp32", device="cpu", verify=False)
    wavs = [
        mulaw_decode(mulaw_encode(fsdd_string(fsdd_dir, spk, list(range(n)), 5))).astype(np.float32)
        for spk, n in zip(FSDD_SPEAKERS, (2, 6, 3), strict=False)
    ]
    batch = ov_int8.embed_batch(wavs, 8000)  # mixed lengths: padded and masked in one dynamic-shape call
    for i, w in enumerate(wavs):
        one = ov_int8.embed(w, 8000)
        assert cosine(batch[i], one) >= 0.9995  # activation scales are per frame: padding barely matters
        assert cosine(one, fused.embed(w, 8000)) >= 0.999  # the accuracy guard on real telephone speech


def test_cached_ir_is_reused(ov_int8: EmbeddingEngine, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the cached IR should have been loaded")

    monkeypatch.setattr(ov_mod, "build_ir", no_build)
    again = create_backend("openvino-int8", model_dir, device="cpu", verify=False, num_threads=1)
    assert isinstance(again, ov_mod.OpenVinoEngine) and again.ir_path == ov_int8.ir_path  # type: ignore[attr-defined]


def test_compile_config_follows_the_cpu() -> None:
    cfg = ov_mod.compile_config("int8", 2)
    assert cfg["INFERENCE_NUM_THREADS"] == 2 and cfg["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == ov_mod.DQ_GROUP
    assert cfg["INFERENCE_PRECISION_HINT"] == ("bf16" if cpu_has_bf16() else "f32")
    assert ov_mod.compile_config("fp32", 1)["INFERENCE_PRECISION_HINT"] == "f32"
    if not cpu_has_bf16():
        with pytest.raises(ConfigError, match="native bf16"):
            ov_mod.compile_config("bf16", 1)


def test_missing_openvino_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    real_import = builtins.__import__

    def no_ov(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "openvino":
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ov)
    assert not ov_mod.openvino_available()
    with pytest.raises(ConfigError, match="needs the packages openvino"):
        create_backend("openvino-int8", model_dir, device="cpu", verify=False)
    with pytest.raises(ConfigError, match="runs in int8"):
        create_backend("openvino-int8", model_dir, precision="bf16", device="cpu", verify=False)


def test_settings_accept_the_openvino_backends() -> None:
    from voiceauth.config import Settings

    assert Settings(backend="openvino-int8").backend == "openvino-int8"
    assert Settings(backend="openvino-bf16").backend == "openvino-bf16"
