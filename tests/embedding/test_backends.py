"""The fused backends compute SpeechBrain's ECAPA from the same weights: equivalent to the reference, exact batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import FSDD_SPEAKERS, SAMPLES, fsdd_string
from voiceauth.audio.codecs import mulaw_decode, mulaw_encode
from voiceauth.audio.io import load_audio
from voiceauth.embedding.backends import FusedEngine, create_backend, resolve_backend
from voiceauth.embedding.backends import engine as engine_mod
from voiceauth.embedding.backends.fused import FusedEcapa, expected_state_keys, reflect_index
from voiceauth.embedding.backends.int8 import BF16_LAYERS, FP32_LAYERS, Bf16Linear, Int8Linear
from voiceauth.embedding.base import EmbeddingEngine, cosine
from voiceauth.embedding.ecapa import EcapaEngine
from voiceauth.embedding.precision import cpu_has_bf16
from voiceauth.errors import ConfigError, EmbeddingError, ModelError

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def state(model_dir: Path) -> dict[str, torch.Tensor]:
    loaded: dict[str, torch.Tensor] = torch.load(
        model_dir / "embedding_model.ckpt", map_location="cpu", weights_only=True
    )
    return loaded


@pytest.fixture(scope="session")
def fused_fp32(model_dir: Path) -> FusedEngine:
    return FusedEngine(model_dir, mode="fp32", device="cpu", verify=False)


@pytest.fixture(scope="session")
def fused_int8(model_dir: Path) -> FusedEngine:
    return FusedEngine(model_dir, mode="int8", device="cpu", verify=False)


@pytest.fixture(scope="session")
def speech(fsdd_dir: Path) -> list[np.ndarray]:
    """Real telephone speech: mu-law FSDD digit strings (2 speakers) and a bundled LibriSpeech flac at 8 kHz."""
    wavs = [
        mulaw_decode(mulaw_encode(fsdd_string(fsdd_dir, spk, [3, 1, 4, 1, 5], 7))).astype(np.float32)
        for spk in FSDD_SPEAKERS[:2]
    ]
    libri = load_audio(next(SAMPLES.glob("librispeech_*.flac")))
    wav16 = torch.from_numpy(libri.samples.astype(np.float32))[: 16000 * 4]
    wavs.append(engine_mod.T.Resample(libri.sample_rate, 8000)(wav16).numpy())
    return wavs


def test_checkpoint_keys_are_exactly_the_ones_the_fused_model_reads(state: dict[str, torch.Tensor]) -> None:
    assert sorted(expected_state_keys()) == sorted(state)


def test_a_checkpoint_of_another_shape_is_refused(state: dict[str, torch.Tensor]) -> None:
    broken = {k: v for k, v in state.items() if k != "mfa.conv.conv.weight"}
    with pytest.raises(ModelError, match="mfa.conv.conv.weight"):
        FusedEcapa(broken)


def test_reflect_index_is_speechbrains_reflect_padding_at_each_utterances_own_length() -> None:
    x = torch.randn(2, 20, 3)
    frames = torch.tensor([20, 13])
    bi, ti = reflect_index(frames, 20, kernel=3, dilation=4)
    cols = x[bi, ti].reshape(2, 20, 3 * 3)
    for b, n in enumerate(frames.tolist()):
        padded = F.pad(x[b : b + 1, :n].transpose(1, 2), (4, 4), mode="reflect")[0].T  # [n + 8, C]
        want = torch.cat([padded[k * 4 : k * 4 + n] for k in range(3)], dim=-1)
        assert torch.equal(cols[b, :n], want)


def test_fused_backends_match_speechbrains_reference_pipeline(
    fused_fp32: FusedEngine, fused_int8: FusedEngine, speech: list[np.ndarray], model_dir: Path
) -> None:
    from voiceauth.embedding.reference import load_reference

    ref = load_reference(model_dir)
    with torch.inference_mode():
        for wav in speech:
            t16 = engine_mod.T.Resample(8000, 16000)(torch.from_numpy(wav))
            want = ref.encode_batch(t16.unsqueeze(0))[0, 0].numpy()
            assert cosine(fused_fp32.embed(wav, 8000), want) >= 0.9999
            assert cosine(fused_int8.embed(wav, 8000), want) >= 0.999


def test_mixed_length_batch_equals_one_by_one(fused_fp32: FusedEngine, fused_int8: FusedEngine, fsdd_dir: Path) -> None:
    wavs = [fsdd_string(fsdd_dir, spk, list(range(n)), 3) for spk, n in zip(FSDD_SPEAKERS, (2, 7, 4, 5), strict=False)]
    assert len({w.size for w in wavs}) == len(wavs)  # really mixed lengths, padded inside one call
    for eng in (fused_fp32, fused_int8):
        batch = eng.embed_batch(wavs, 8000)
        assert batch.shape == (4, 192)
        assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
        for i, w in enumerate(wavs):
            assert cosine(batch[i], eng.embed(w, 8000)) >= 0.9999


def test_fused_engine_is_an_embedding_engine_and_rejects_bad_input(fused_fp32: FusedEngine) -> None:
    assert isinstance(fused_fp32, EmbeddingEngine)
    assert fused_fp32.embed_batch([], 8000).shape == (0, 192)
    with pytest.raises(EmbeddingError, match="too short"):
        fused_fp32.embed(np.zeros(400, dtype=np.float32), 8000)
    with pytest.raises(EmbeddingError, match="NaN"):
        fused_fp32.embed(np.full(8000, np.nan, dtype=np.float32), 8000)
    with pytest.raises(EmbeddingError, match="mono"):
        fused_fp32.embed(np.zeros((2, 8000), dtype=np.float32), 8000)


def test_backend_selection_is_honest_about_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    import voiceauth.embedding.backends as backends

    monkeypatch.setattr(backends, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(backends, "int8_available", lambda: True)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert resolve_backend("auto", "cpu") == "fused-int8"  # AVX512-BF16 without AMX (Zen 4) too: int8 is faster
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")  # threads sleep: ONNX Runtime's int8 wins where installed
    import voiceauth.embedding.backends.onnx as onnx_mod

    monkeypatch.setattr(onnx_mod, "onnxruntime_available", lambda: True)
    assert resolve_backend("auto", "cpu") == "onnx-int8"
    monkeypatch.setattr(onnx_mod, "onnxruntime_available", lambda: False)
    assert resolve_backend("auto", "cpu") == "fused-int8"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert resolve_backend("auto", "cpu") == "fused-int8"
    monkeypatch.setattr(backends, "cpu_has_amx", lambda: True)
    assert resolve_backend("auto", "cpu") == "fused"  # bf16 on AMX CPUs without ONNX Runtime
    monkeypatch.setattr(onnx_mod, "onnxruntime_available", lambda: True)
    assert resolve_backend("auto", "cpu") == "onnx-int8"  # ONNX Runtime's int8 beats bf16 on AMX, either policy
    assert resolve_backend("auto", "cuda") == "fused"
    assert resolve_backend("speechbrain", "cpu") == "speechbrain"
    with pytest.raises(ConfigError, match="'onnx' is not supported"):
        resolve_backend("onnx", "cpu")
    with pytest.raises(ConfigError, match="only supported on CUDA"):
        engine_mod.resolve_mode("fp16", "cpu")
    with pytest.raises(ConfigError, match="needs a CPU"):
        engine_mod.resolve_mode("int8", "cuda")


def test_int8_keeps_only_the_sensitive_layers_in_fp32(fused_int8: FusedEngine) -> None:
    model = fused_int8.model
    assert isinstance(model, FusedEcapa)
    layers = model.gemm_layers()
    fp32 = sorted(name for name, layer in layers.items() if not isinstance(layer.linear, Int8Linear))
    assert fp32 == sorted(FP32_LAYERS)
    bf16 = {name for name, layer in layers.items() if isinstance(layer.linear, Bf16Linear)}
    assert bf16 == (set(BF16_LAYERS) if cpu_has_bf16() else set())
    assert model.att_conv is not None


def test_create_backend_builds_each_named_backend(model_dir: Path) -> None:
    assert isinstance(
        create_backend("speechbrain", model_dir, precision="fp32", device="cpu", verify=False), EcapaEngine
    )
    eng = create_backend("auto", model_dir, precision="fp32", device="cpu", verify=False)
    assert isinstance(eng, FusedEngine) and eng.precision == "fp32"
    with pytest.raises(ConfigError, match="runs in int8"):
        create_backend("fused-int8", model_dir, precision="bf16", device="cpu", verify=False)
