"""The shipped telephone countermeasure: its files are verified before use, damaged or missing files are refused with
a clear error, the training script writes a loadable verified model, and the pure parts (channel, calibration,
threshold from a target BPCER) do what they say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.fetch import sha256_file
from voiceauth.antispoof.attacks import espeak_available
from voiceauth.antispoof.channel import CODECS, ChannelConfig, chain, fixed_telephone
from voiceauth.antispoof.countermeasure import create_countermeasure
from voiceauth.antispoof.evaluation import audio_files, threshold_for_bpcer
from voiceauth.antispoof.telephone import CM_DIR, MANIFEST, WEIGHTS, load_shipped
from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.config import Settings
from voiceauth.errors import ModelChecksumMismatch, ModelError, ModelFileMissing

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "audio_samples" / "librispeech_1034-121119-0000.flac"


def _copy_model(tmp_path: Path) -> Path:
    out = tmp_path / "cm"
    shutil.copytree(CM_DIR, out)
    return out


def test_the_shipped_model_matches_its_sha256_pin_and_loads() -> None:
    manifest = json.loads((CM_DIR / MANIFEST).read_text())
    assert sha256_file(CM_DIR / WEIGHTS) == manifest["files"][WEIGHTS]["sha256"]
    net, info = load_shipped()
    assert info.digest == manifest["files"][WEIGHTS]["sha256"]
    assert info.threshold == manifest["threshold"]["llr"]
    assert "never Piper" in manifest["provenance"]["data"]
    assert manifest["provenance"]["command"].startswith("python -m voiceauth.antispoof.train")
    assert not net.training


def test_a_changed_weights_file_is_refused(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelChecksumMismatch, match="sha256"):
        load_shipped(folder)
    with pytest.raises(ModelChecksumMismatch):
        create_countermeasure(Settings(antispoof_model="telephone", antispoof_model_dir=folder))


def test_missing_files_and_a_foreign_manifest_are_clear_errors(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    (folder / WEIGHTS).unlink()
    with pytest.raises(ModelFileMissing, match="python -m voiceauth.antispoof.train"):
        load_shipped(folder)
    with pytest.raises(ModelFileMissing, match="manifest"):
        load_shipped(tmp_path / "nowhere")
    other = _copy_model(tmp_path / "b")
    manifest = json.loads((other / MANIFEST).read_text())
    del manifest["threshold"]
    (other / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="calibration/threshold"):
        load_shipped(other)


def test_a_weights_file_of_another_network_is_refused(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    np.savez(folder / WEIGHTS, something=np.zeros(3, dtype=np.float32))
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][WEIGHTS]["sha256"] = sha256_file(folder / WEIGHTS)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="does not hold the countermeasure network"):
        load_shipped(folder)


def test_the_default_countermeasure_is_the_telephone_network_enforced() -> None:
    settings = Settings(_env_file=None, antispoof_mode="enforce")  # type: ignore[call-arg]
    fresh = Settings.model_fields
    assert fresh["antispoof_mode"].default == "enforce" and fresh["antispoof_model"].default == "telephone"
    cm = create_countermeasure(settings)
    assert cm.name.startswith("telephone-lcnn-") and cm.threshold == load_shipped()[1].threshold
    x, rate = sf.read(SPEECH, dtype="float32")
    assert rate == 16_000
    result = cm.score(x)
    assert np.isfinite(result.score) and len(result.windows) >= 1
    assert cm.score(x[:8000]).windows  # half a second is tiled to one window, not an error
    with pytest.raises(AntiSpoofError, match="empty"):
        cm.score(np.zeros(0, dtype=np.float32))


def test_channel_chain_is_deterministic_8k_and_bounded() -> None:
    x, rate = sf.read(SPEECH, dtype="float32")
    x = x[: 3 * rate]
    a = chain(x, rate, np.random.default_rng(5))
    b = chain(x, rate, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.size == x.size // 2 and np.abs(a).max() <= 1.0
    for i, codec in enumerate(CODECS):
        weights = tuple(1.0 if j == i else 0.0 for j in range(len(CODECS)))
        y = chain(x, rate, np.random.default_rng(i), ChannelConfig(codec_weights=weights))
        assert y.size == x.size // 2 and np.isfinite(y).all(), codec
    fixed = fixed_telephone(x, rate, "alaw")
    assert fixed.size == x.size // 2
    spec = np.abs(np.fft.rfft(fixed))
    freqs = np.fft.rfftfreq(fixed.size, 1 / 8000)
    assert spec[freqs < 150].mean() < 0.2 * spec[(freqs > 500) & (freqs < 3000)].mean()  # band-passed
    with pytest.raises(AntiSpoofError, match="non-empty"):
        chain(np.zeros(0, dtype=np.float32), rate, np.random.default_rng(0))


def test_threshold_for_a_target_bpcer() -> None:
    bona = np.arange(100, dtype=np.float64)  # 0..99
    thr = threshold_for_bpcer(bona, 0.01)
    assert np.mean(bona >= thr) == pytest.approx(0.01)
    assert np.mean(bona >= threshold_for_bpcer(bona, 0.0)) == 0.0
    with pytest.raises(AntiSpoofError, match="fraction"):
        threshold_for_bpcer(bona, 1.5)


def test_spoof_eval_reads_a_folder_tree(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    x = np.zeros(800, dtype=np.float32)
    for p in (tmp_path / "top.wav", tmp_path / "a" / "one.flac", tmp_path / "a" / "b" / "two.wav"):
        sf.write(p, x, 8000)
    sf.write(tmp_path / ".hidden" / "skip.wav", x, 8000)
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    names = [p.relative_to(tmp_path).as_posix() for p in audio_files(tmp_path)]
    assert names == ["a/b/two.wav", "a/one.flac", "top.wav"]
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    with pytest.raises(AntiSpoofError, match="sub-folders"):
        audio_files(tmp_path / "empty")
    with pytest.raises(AntiSpoofError, match="not a directory"):
        audio_files(tmp_path / "top.wav")


@pytest.mark.slow
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (Debian package espeak-ng)")
def test_the_training_script_writes_a_loadable_verified_model(tmp_path: Path, fsdd_dir: Path) -> None:
    from voiceauth.antispoof.train import main

    out = tmp_path / "tiny"
    main(["--data", str(fsdd_dir.parent), "--out", str(out), "--limit", "3", "--epochs", "1", "--steps", "2"])
    net, info = load_shipped(out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"][WEIGHTS]["sha256"] == sha256_file(out / WEIGHTS) == info.digest
    assert manifest["provenance"]["seed"] == 0 and len(manifest["provenance"]["curve"]) == 1
    assert np.isfinite(info.scale) and np.isfinite(info.offset) and np.isfinite(info.threshold)
    cm = create_countermeasure(Settings(antispoof_model="telephone", antispoof_model_dir=out))
    x, _ = sf.read(SPEECH, dtype="float32")
    assert np.isfinite(cm.score(x).score)
