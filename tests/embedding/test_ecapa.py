"""The engine is SpeechBrain's ECAPA with the real weights: equivalent to the reference, speaker-discriminative."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from tests.conftest import FSDD_SPEAKERS, SAMPLES, fsdd_string
from voiceauth.embedding.base import cosine
from voiceauth.embedding.ecapa import EcapaEngine, to_model_rate
from voiceauth.errors import ConfigError, EmbeddingError

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def reference(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from voiceauth.embedding.reference import load_reference

    return load_reference(model_dir, tmp_path_factory.mktemp("sb-ref"))


def _reference_embedding(reference, wav: np.ndarray, sr: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    t16 = to_model_rate(torch.from_numpy(wav), sr)
    with torch.inference_mode():
        out = reference.encode_batch(t16.unsqueeze(0))
    return np.asarray(out.reshape(-1).numpy(), dtype=np.float32)


@pytest.fixture(scope="module")
def speech_inputs() -> list[tuple[np.ndarray, int]]:
    wide, sr = sf.read(SAMPLES / "librispeech_1034-121119-0000.flac", dtype="float32")
    narrow, sr8 = sf.read(SAMPLES / "george_a.wav", dtype="float32")
    return [(wide[: 6 * sr], sr), (narrow, sr8)]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_equivalent_to_speechbrain_reference(
    precision: str,
    model_dir: Path,
    reference,
    speech_inputs,  # type: ignore[no-untyped-def]
) -> None:
    eng = EcapaEngine(model_dir, precision=precision, device="cpu", verify=False)
    for wav, sr in speech_inputs:
        ours = eng.embed(wav, sr)
        ref = _reference_embedding(reference, wav, sr)
        assert ours.dtype == np.float32 and ours.shape == (192,)
        assert abs(float(np.linalg.norm(ours)) - 1.0) < 1e-5
        assert cosine(ours, ref) >= 0.999, (precision, sr)


def test_fp16_is_refused_on_cpu(model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="fp16"):
        EcapaEngine(model_dir, precision="fp16", device="cpu", verify=False)


def test_batch_of_mixed_lengths_equals_one_by_one(engine: EcapaEngine, fsdd_dir: Path) -> None:
    wavs = [
        fsdd_string(fsdd_dir, "george", [1, 2, 3], 5),
        fsdd_string(fsdd_dir, "lucas", [4, 5, 6, 7, 8, 9], 5),
        fsdd_string(fsdd_dir, "theo", [0, 9], 7),
        fsdd_string(fsdd_dir, "jackson", list(range(10)), 8),
    ]
    batch = engine.embed_batch(wavs, 8000)
    assert batch.shape == (4, 192)
    for i, w in enumerate(wavs):
        assert cosine(batch[i], engine.embed(w, 8000)) >= 0.999


def test_real_weights_separate_speakers(engine: EcapaEngine, fsdd_dir: Path) -> None:
    """4-digit strings: same-speaker cosine clearly above different-speaker cosine (random weights fail this)."""
    strings, owners = [], []
    for spk in FSDD_SPEAKERS:
        for take in range(3):
            digits = [(take * 3 + k) % 10 for k in range(4)]
            strings.append(fsdd_string(fsdd_dir, spk, digits, 20 + take))
            owners.append(spk)
    embs = engine.embed_batch(strings, 8000)
    same, diff = [], []
    for i, j in combinations(range(len(strings)), 2):
        (same if owners[i] == owners[j] else diff).append(float(embs[i] @ embs[j]))
    margin = float(np.mean(same) - np.mean(diff))
    assert margin >= 0.3, f"same {np.mean(same):.3f} diff {np.mean(diff):.3f}"


def test_bad_waveforms_are_typed_errors(engine: EcapaEngine) -> None:
    with pytest.raises(EmbeddingError, match="too short"):
        engine.embed(np.zeros(100, dtype=np.float32), 8000)
    with pytest.raises(EmbeddingError, match="NaN"):
        engine.embed(np.full(16000, np.nan, dtype=np.float32), 16000)
    with pytest.raises(EmbeddingError, match="mono"):
        engine.embed(np.zeros((2, 16000), dtype=np.float32), 16000)


def test_cli_embed_and_compare(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voiceauth.cli import app
    from voiceauth.config import get_settings

    monkeypatch.setenv("VOICEAUTH_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("VOICEAUTH_PRECISION", "fp32")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        res = runner.invoke(app, ["embed", str(SAMPLES / "george_a.wav"), "--json"])
        assert res.exit_code == 0, res.output
        data = json.loads(res.output)
        assert data["dim"] == 192 and len(data["embedding"]) == 192
        assert data["sample_rate"] == 8000 and 3.0 < data["seconds"] < 6.0
        same = runner.invoke(app, ["compare", str(SAMPLES / "george_a.wav"), str(SAMPLES / "george_b.wav")])
        diff = runner.invoke(app, ["compare", str(SAMPLES / "george_a.wav"), str(SAMPLES / "lucas_a.wav")])
        assert same.exit_code == 0 and diff.exit_code == 0
        assert float(same.output) > float(diff.output) + 0.3
    finally:
        get_settings.cache_clear()
