"""Short answers: probe crops, the duration term of the calibration, the per-duration development protocol and the
shipped operating points that hold their false-accept rate at every duration (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import fsdd_string
from voiceauth.audio.frontend import FrontEnd
from voiceauth.config import Settings
from voiceauth.errors import ConfigError
from voiceauth.scoring.build import build_channel
from voiceauth.scoring.calibration import Calibration, duration_quality, fit_duration_term
from voiceauth.scoring.candidates import Candidate, cross_fold_trials
from voiceauth.scoring.evalsets import Piece, crop_pieces
from voiceauth.scoring.evaluation import cross_scores
from voiceauth.scoring.metrics import threshold_at_far
from voiceauth.scoring.operating_points import TARGET_FAR, default_operating_points
from voiceauth.scoring.shipped import COHORT_DIR, load_cohort_scorer


def test_crops_take_the_start_of_each_piece_and_keep_short_pieces_whole() -> None:
    a = Piece("ls-1-0", "1", np.arange(8000 * 5, dtype=np.float32) / 1e6, 8000)
    b = Piece("ls-2-0", "2", np.zeros(8000, dtype=np.float32), 8000)
    crops = crop_pieces([a, b], 2.0)
    assert [c.key for c in crops] == ["ls-1-0-c2", "ls-2-0-c2"]
    assert crops[0].seconds == 2.0 and np.array_equal(crops[0].samples, a.samples[:16000])
    assert crops[1].seconds == 1.0  # shorter than the crop: stays whole
    with pytest.raises(ConfigError, match="positive"):
        crop_pieces([a], 0)


def test_duration_term_moves_only_short_probes() -> None:
    cal = Calibration(a=3.0, b=-10.0, c=-0.5)
    s = np.array([4.0, 4.0, 4.0])
    long, short = cal.llr(s, [10.0, 4.0, 2.0]), cal.llr(s)
    assert long[0] == long[1] == short[0]  # from cap_s (4 s) up, and without a duration, no term
    assert long[2] == pytest.approx(short[2] - 0.5 * np.log(2.0 / 4.0))
    assert duration_quality([0.1, 0.5, 2.0, 9.0]).tolist() == pytest.approx(
        [np.log(0.5 / 4), np.log(0.5 / 4), np.log(0.5), 0.0]
    )
    assert Calibration(3.0, -10.0).llr(s, [1.0, 2.0, 3.0]).tolist() == Calibration(3.0, -10.0).llr(s).tolist()


def test_fitted_duration_term_lines_up_the_false_accept_tails() -> None:
    rng = np.random.default_rng(3)
    base = Calibration(a=2.0, b=-4.0)
    long_non = rng.standard_normal(40000)
    short_non = rng.standard_normal(40000) + 0.3  # short probes' impostors score 0.3 higher
    buckets = [(long_non, np.full(long_non.size, 6.0)), (short_non, np.full(short_non.size, 1.0))]
    fitted = fit_duration_term(base, buckets, list(TARGET_FAR.values()))
    expected_c = 2.0 * 0.3 / np.log(4.0)  # a * shift / -q(1 s)
    assert fitted.c == pytest.approx(expected_c, abs=0.1)
    for far in TARGET_FAR.values():
        thr = [threshold_at_far(fitted.scale(n, d), far) for n, d in buckets]
        raw_thr = [threshold_at_far(base.scale(n, d), far) for n, d in buckets]
        assert abs(thr[0] - thr[1]) < abs(raw_thr[0] - raw_thr[1]) / 3


def _toy_set(
    rng: np.random.Generator, speakers: int = 12, per: int = 3, noise: float = 0.6, dim: int = 24
) -> tuple[Any, ...]:
    centres = rng.standard_normal((speakers, dim))
    spk = np.repeat([f"s{i}" for i in range(speakers)], per)
    whole = np.repeat(centres, per, axis=0) + 0.4 * rng.standard_normal((speakers * per, dim))
    crop = whole + noise * rng.standard_normal(whole.shape)  # a crop is a noisier view of the same piece
    return spk, whole, crop


def test_cross_fold_trials_pair_every_enrolment_with_every_other_piece_crop() -> None:
    rng = np.random.default_rng(5)
    spk, whole, crop = _toy_set(rng)
    secs = rng.uniform(1.5, 2.0, spk.size)
    tr = cross_fold_trials(Candidate(True, 10), whole, crop, secs, spk.tolist())
    n = spk.size
    assert tr.target.size == 12 * 3 * 2  # ordered pairs of a reader's 3 pieces, never a piece with itself
    assert tr.nontarget.size == n * n - n - tr.target.size
    assert set(np.round(tr.target_s, 9)) <= set(np.round(secs, 9))
    assert tr.target.mean() > tr.nontarget.mean() + 1.0


def test_build_channel_with_crops_holds_every_operating_point_on_every_bucket() -> None:
    rng = np.random.default_rng(8)
    spk, whole, crop3 = _toy_set(rng, speakers=110, per=3, noise=0.5, dim=64)
    crop2 = whole + 0.9 * rng.standard_normal(whole.shape)
    full_s = np.full(spk.size, 5.0)
    crops = {"3s": (crop3, np.full(spk.size, 2.7)), "2s": (crop2, np.full(spk.size, 1.7))}
    out = build_channel("narrowband", whole, spk.tolist(), 0.05, full_s=full_s, crops=crops)
    points = out["operating_points"]
    for label, by in out["operating_points_by_duration"].items():
        for name, thr in by.items():
            assert points[name] >= thr, (label, name)
    for label, rep in out["dev_by_duration"].items():
        for name, far in rep["far"].items():
            assert far <= TARGET_FAR[name], (label, name, far)
    assert set(out["calibration"]) == {"a", "b", "c", "cap_s"}


def test_shipped_narrowband_points_hold_on_every_development_duration() -> None:
    spec = json.loads((COHORT_DIR / "backend.json").read_text(encoding="utf-8"))["channels"]["narrowband"]
    assert set(spec["dev_by_duration"]) == {"full", "3s", "2s"}
    for label, rep in spec["dev_by_duration"].items():
        assert rep["far"]["high_security"] <= TARGET_FAR["high_security"], label
        assert rep["nontarget_trials"] > 100_000  # enough impostor trials to measure 0.1%
    assert spec["dev_by_duration"]["2s"]["median_probe_speech_s"] < 2.0


@pytest.mark.model
def test_two_seconds_of_real_speech_keep_an_impostor_out_and_let_the_speaker_in(engine: Any, fsdd_dir: Path) -> None:
    """Real ECAPA, shipped scorer: 2 s answers (cropped from FSDD digit strings) of george against george's
    voiceprint score above those of the most confusable impostor, who stays below high_security."""
    frontend = FrontEnd(Settings())

    def embed(speaker: str, digits: list[int], index: int, seconds: float | None) -> tuple[np.ndarray, float]:
        wav = fsdd_string(fsdd_dir, speaker, digits, index)
        if seconds is not None:
            wav = wav[: int(seconds * 8000)]
        utt = frontend.from_samples(wav, 8000)
        emb = engine.embed(utt.speech, utt.sample_rate, telephone=True)  # 8 kHz input: the telephone network
        return np.asarray(emb, dtype=np.float64), float(utt.quality.net_speech_s)

    enrol = np.mean([embed("george", d, k, None)[0] for k, d in enumerate([[1, 2, 3, 4, 5, 6, 7], [7, 8, 9, 0, 1]])], 0)
    probes = [("george", [9, 8, 7, 6, 5], 20), ("george", [2, 4, 6, 8, 0], 21)]
    probes += [("yweweler", [9, 8, 7, 6, 5], 20), ("yweweler", [2, 4, 6, 8, 0], 21), ("yweweler", [3, 1, 4, 1], 22)]
    emb, secs = zip(*(embed(s, d, i, 2.0) for s, d, i in probes), strict=True)
    assert max(secs) <= 2.0
    _, _, cal = cross_scores(load_cohort_scorer(), enrol[None, :], np.stack(emb), True, list(secs))
    genuine, impostor = cal[0, :2], cal[0, 2:]
    assert impostor.max() < default_operating_points()["high_security"], impostor
    assert genuine.min() > impostor.max(), (genuine, impostor)
