"""The ONNX Runtime backend computes fused-int8's embeddings (optional packages: skipped without them)."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import FSDD_SPEAKERS, fsdd_string
from voiceauth.audio.codecs import mulaw_decode, mulaw_encode
from voiceauth.embedding.autoselect import GUARD_COSINE
from voiceauth.embedding.backends import FusedEngine, create_backend
from voiceauth.embedding.backends import onnx as onnx_mod
from voiceauth.embedding.backends.int8 import cpu_has_vnni
from voiceauth.embedding.base import EmbeddingEngine, cosine
from voiceauth.errors import ConfigError

#: without VNNI int8 GEMMs saturate or run on 7-bit weights, and the minimum cosine measured there was 0.9976-0.9981
#: (AMD EPYC, AVX2 only): still the same embedding, but under the guard, which ``backend=auto`` measures on each
#: machine before it runs an int8 plan (voiceauth.embedding.autoselect) and so rejects there
INT8_COSINE = GUARD_COSINE if cpu_has_vnni() else 0.995

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def onnx_int8(model_dir: Path) -> EmbeddingEngine:
    if not onnx_mod.onnxruntime_available():
        pytest.skip("onnxruntime/onnx/onnxscript are not installed (optional: voiceauth[onnx])")
    # the graph is cached beside the model: exported once (~15 s), loaded afterwards
    return create_backend("onnx-int8", model_dir, device="cpu", verify=False)


def test_onnx_int8_matches_fused_int8_and_batches_exactly(onnx_int8: EmbeddingEngine, fsdd_dir: Path) -> None:
    assert isinstance(onnx_int8, onnx_mod.OnnxEngine) and onnx_int8.onnx_path.is_file()
    model_dir = onnx_int8.onnx_path.parent.parent / onnx_int8.onnx_path.parent.name.removesuffix("-onnx")
    fused = FusedEngine(model_dir, mode="fp32", device="cpu", verify=False)
    wavs = [
        mulaw_decode(mulaw_encode(fsdd_string(fsdd_dir, spk, list(range(n)), 5))).astype(np.float32)
        for spk, n in zip(FSDD_SPEAKERS, (2, 6, 3), strict=False)
    ]
    batch = onnx_int8.embed_batch(wavs, 8000)
    for i, w in enumerate(wavs):
        one = onnx_int8.embed(w, 8000)
        # padded batch ~= one by one: the activation scale of a dynamic int8 MatMul is per call (whole tensor)
        assert cosine(batch[i], one) >= 0.9995
        assert cosine(one, fused.embed(w, 8000)) >= INT8_COSINE  # the int8 plan holds the accuracy guard (VNNI)


def test_missing_onnxruntime_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    real_import = builtins.__import__

    def no_ort(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    assert not onnx_mod.onnxruntime_available()
    with pytest.raises(ConfigError, match="needs the packages onnxruntime"):
        create_backend("onnx-int8", model_dir, device="cpu", verify=False)
    with pytest.raises(ConfigError, match="runs in int8"):
        create_backend("onnx-int8", model_dir, precision="bf16", device="cpu", verify=False)


def test_settings_accept_the_onnx_backend() -> None:
    from voiceauth.config import Settings

    assert Settings(backend="onnx-int8").backend == "onnx-int8"
