"""The AASIST network written here loads the official release strictly and refuses anything else."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.fetch import sha256_file, verify_dir
from models.registry import AASIST as AASIST_SPEC
from voiceauth.antispoof.aasist import AASIST, sinc_filterbank
from voiceauth.antispoof.countermeasure import Countermeasure, load_aasist
from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.errors import ModelChecksumMismatch, ModelError, ModelFileMissing


def test_official_weights_load_strictly_with_no_missing_or_unexpected_keys(aasist_dir: Path) -> None:
    state = torch.load(aasist_dir / "AASIST.pth", map_location="cpu", weights_only=True)
    net = AASIST()
    result = net.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert set(net.state_dict()) == set(state)
    assert sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked")) == sum(
        p.numel() for p in net.parameters()
    ) + sum(b.numel() for n, b in net.named_buffers() if n.endswith(("running_mean", "running_var")))


def test_pin_matches_the_release(aasist_dir: Path) -> None:
    assert verify_dir(aasist_dir, AASIST_SPEC) == {"AASIST.pth": AASIST_SPEC.file("AASIST.pth").sha256}
    assert sha256_file(aasist_dir / "AASIST.pth") == "51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0"


def test_a_foreign_state_dict_is_refused(tmp_path: Path) -> None:
    state = AASIST().state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "AASIST.pth")
    with pytest.raises(ModelError, match="does not match the AASIST architecture"):
        load_aasist(tmp_path, verify=False)


def test_damaged_or_missing_weights_are_named(aasist_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileMissing, match="AASIST.pth"):
        Countermeasure(tmp_path)
    shutil.copy(aasist_dir / "AASIST.pth", tmp_path / "AASIST.pth")
    with (tmp_path / "AASIST.pth").open("r+b") as fh:
        fh.seek(100_000)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelChecksumMismatch, match="AASIST.pth"):
        Countermeasure(tmp_path)


def test_sinc_front_end_is_a_bank_of_band_pass_filters() -> None:
    bank = sinc_filterbank(70, 128, 16_000).numpy()
    assert bank.shape == (70, 129)  # even kernel sizes are made odd (symmetric filters)
    assert np.allclose(bank, bank[:, ::-1], atol=1e-7)
    assert np.all(np.abs(bank[10:].sum(axis=1)) < 0.01)  # band-pass above the lowest bands: no DC gain
    peaks = np.abs(np.fft.rfft(bank, 4096, axis=1)).argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0) and peaks[-1] > peaks[0]  # mel-spaced, rising centre frequencies


def test_too_short_window_is_refused(aasist_dir: Path) -> None:
    with pytest.raises(AntiSpoofError, match="too short"):
        Countermeasure(aasist_dir, window=8000)


def test_each_model_has_its_own_cache_dir(tmp_path: Path) -> None:
    from models.fetch import cache_dir, ensure_model
    from models.registry import ECAPA, REGISTRY
    from voiceauth.config import Settings

    settings = Settings(home=tmp_path, model_dir=None)
    assert REGISTRY[AASIST_SPEC.name] is AASIST_SPEC
    assert cache_dir(settings, ECAPA) == settings.model_cache_dir
    assert cache_dir(settings, AASIST_SPEC) == tmp_path / "models" / "aasist-asvspoof2019-la"
    with pytest.raises(ModelFileMissing, match="AASIST.pth"):
        ensure_model(settings, AASIST_SPEC, fetch=False)
