"""Quality measures and feedback codes on real speech made worse in known ways."""

from __future__ import annotations

import numpy as np
import pytest

from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.quality import QualityThresholds, assess
from voiceauth.audio.resample import resample
from voiceauth.audio.types import Utterance
from voiceauth.config import Settings


def test_clean_speech_is_ok(digits_ref: Utterance, libri_ref: Utterance) -> None:
    for ref in (digits_ref, libri_ref):
        q = ref.quality
        assert q.codes == ("OK",) and q.ok
        assert q.snr_db > 15 and -35 < q.level_dbfs < -10 and q.clipping_ratio == 0.0


def test_clipping(frontend: FrontEnd, digits_8k: np.ndarray) -> None:
    loud = np.clip(digits_8k * 30, -1, 1)
    q = frontend.from_samples(loud, 8000).quality
    assert "CLIPPED" in q.codes and q.clipping_ratio > 0.05


def test_too_quiet(frontend: FrontEnd, libri_16k: np.ndarray, libri_ref: Utterance) -> None:
    q = frontend.from_samples(libri_16k * 10 ** (-30 / 20), 16000).quality
    assert "TOO_QUIET" in q.codes
    assert q.level_dbfs == pytest.approx(libri_ref.quality.level_dbfs - 30, abs=1.0)


def test_too_noisy(frontend: FrontEnd, libri_16k: np.ndarray, libri_ref: Utterance) -> None:
    rms = 10 ** (libri_ref.quality.level_dbfs / 20)
    noise = rms * np.random.default_rng(5).standard_normal(libri_16k.size)  # about 0 dB SNR
    q = frontend.from_samples((libri_16k + noise).astype(np.float32), 16000).quality
    assert "TOO_NOISY" in q.codes and q.snr_db < 10


def test_snr_tracks_added_noise(frontend: FrontEnd, libri_16k: np.ndarray, libri_ref: Utterance) -> None:
    rms = 10 ** (libri_ref.quality.level_dbfs / 20)
    noise = np.random.default_rng(6).standard_normal(libri_16k.size)
    snr = [
        frontend.from_samples((libri_16k + rms * 10 ** (-db / 20) * noise).astype(np.float32), 16000).quality.snr_db
        for db in (5, 15, 25)
    ]
    assert snr[0] < snr[1] < snr[2]


def test_too_short(frontend: FrontEnd, digits_8k: np.ndarray) -> None:
    q = frontend.from_samples(digits_8k[:4800], 8000).quality  # the first digit, 0.6 s
    assert q.codes == ("TOO_SHORT",) and 0.2 < q.net_speech_s < 1.0


def test_thresholds_come_from_settings(digits_8k: np.ndarray) -> None:
    strict = FrontEnd(Settings(min_speech_s=10.0, min_snr_db=200.0, min_level_dbfs=-1.0))
    assert strict.from_samples(digits_8k, 8000).quality.codes == ("TOO_SHORT", "TOO_NOISY", "TOO_QUIET")


def test_assess_without_speech_is_no_speech() -> None:
    q = assess(np.full(10, 1e-4), np.zeros(10, bool), net_speech_s=0.0, clipping_ratio=0.5,
               thresholds=QualityThresholds())  # fmt: skip
    assert q.codes == ("NO_SPEECH", "CLIPPED") and q.level_dbfs == pytest.approx(-40.0)


def test_narrowband_flag(frontend: FrontEnd, libri_16k: np.ndarray, digits_ref: Utterance) -> None:
    assert digits_ref.narrowband  # 8 kHz
    assert not frontend.from_samples(libri_16k, 16000).narrowband
    # telephone audio that was upsampled to 16 kHz before it reached us
    upsampled = resample(resample(libri_16k, 16000, 8000), 8000, 16000)
    assert frontend.from_samples(upsampled, 16000).narrowband
    assert frontend.from_samples(libri_16k, 16000, narrowband=True).narrowband


def test_telephone_band_matching_is_a_setting(libri_16k: np.ndarray) -> None:
    def high_band(utt: Utterance) -> float:
        spec = np.abs(np.fft.rfft(utt.speech)) ** 2
        return float(spec[int(spec.size * 4500 / 8000) :].sum() / spec.sum())

    tel = FrontEnd(Settings(audio_band="telephone")).from_samples(libri_16k, 16000)
    wide = FrontEnd(Settings(audio_band="wide")).from_samples(libri_16k, 16000)
    assert high_band(tel) < 1e-4 < high_band(wide)
    assert tel.quality.net_speech_s == pytest.approx(wide.quality.net_speech_s, rel=0.1)
