"""The randomised telephone channel that every countermeasure training and test utterance goes through.

Both classes (bona fide and spoof) pass the same random chain, so that a detector cannot learn "narrowband means
spoof" (the shortcut that made AASIST, trained on 16 kHz studio audio, flag most phone callers as spoofs):

1. level change (-14..+4 dB around -26 dBFS speech level);
2. RawBoost-style signal augmentation (Tak et al., ICASSP 2022), each part with some probability: linear and
   non-linear convolutive noise (random band filters raised to powers 1..3), impulsive signal-dependent noise,
   stationary coloured additive noise;
3. a telephone band-pass (low edge 150-400 Hz, high edge 3000-3700 Hz), sometimes none;
4. 8 kHz, then one codec: linear PCM, G.711 mu-law, G.711 A-law, GSM 06.10 or AMR-NB at 4.75-12.2 kbit/s (GSM and
   AMR-NB by ``sox``, Debian packages ``sox`` and ``libsox-fmt-all``; skipped with a warning when absent);
5. packet loss (1-6% of 20 ms frames) with concealment: the previous frame repeated and faded, or silence;
6. background noise (white, pink or brown) at 10-30 dB SNR.

Pure numpy/scipy except :func:`sox_codec`, which runs ``sox``. ``chain(x, rate, rng)`` returns 8 kHz float32.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.signal as ss

from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.audio.codecs import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from voiceauth.audio.resample import resample
from voiceauth.embedding.base import FloatArray

__all__ = ["CODECS", "ChannelConfig", "chain", "fixed_telephone", "rawboost", "sox_available", "sox_codec"]

log = logging.getLogger(__name__)

RATE = 8_000
CODECS: tuple[str, ...] = ("pcm", "mulaw", "alaw", "gsm", "amr-nb")


@dataclass(frozen=True)
class ChannelConfig:
    """Probabilities and ranges of the random chain (defaults: the training chain)."""

    p_rawboost: float = 0.5
    p_bandpass: float = 0.85
    codec_weights: tuple[float, ...] = (0.15, 0.25, 0.2, 0.2, 0.2)  # in CODECS order
    p_packet_loss: float = 0.3
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (10.0, 30.0)
    level_db: tuple[float, float] = (-14.0, 4.0)


@lru_cache(maxsize=1)
def sox_available() -> bool:
    return shutil.which("sox") is not None


def sox_codec(x8k: FloatArray, codec: str, amr_mode: int = 7) -> FloatArray:
    """Encode and decode 8 kHz audio with ``sox`` (``gsm`` or ``amr-nb``; ``amr_mode`` 0-7 = 4.75-12.2 kbit/s)."""
    if codec not in ("gsm", "amr-nb"):
        raise AntiSpoofError(f"sox codec {codec!r} is not supported; use gsm or amr-nb")
    exe = shutil.which("sox")
    if exe is None:
        raise AntiSpoofError("sox is not installed; install the Debian packages sox and libsox-fmt-all")
    pcm = (np.clip(np.asarray(x8k, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    raw = ["-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1"]
    enc_opts = ["-C", str(int(amr_mode))] if codec == "amr-nb" else []
    enc = subprocess.run(
        [exe, *raw, "-", *enc_opts, "-t", codec, "-"], input=pcm, capture_output=True, check=False, timeout=60
    )
    if enc.returncode != 0 or not enc.stdout:
        raise AntiSpoofError(f"sox could not encode {codec}: {enc.stderr.decode(errors='replace')[:200]}")
    dec = subprocess.run(
        [exe, "-t", codec, "-", *raw, "-"], input=enc.stdout, capture_output=True, check=False, timeout=60
    )
    if dec.returncode != 0:
        raise AntiSpoofError(f"sox could not decode {codec}: {dec.stderr.decode(errors='replace')[:200]}")
    y = np.frombuffer(dec.stdout, dtype="<i2").astype(np.float32) / 32768.0
    out = np.zeros(x8k.size, dtype=np.float32)  # codecs pad to whole frames: keep the input's length
    n = min(out.size, y.size)
    out[:n] = y[:n]
    return out


def _rms_db(x: FloatArray) -> float:
    return float(10.0 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-12))


def _band_fir(rng: np.random.Generator, rate: int, n_taps: int = 31) -> np.ndarray:
    lo = float(rng.uniform(20.0, 1000.0))
    hi = float(rng.uniform(lo + 500.0, rate / 2.0 - 100.0)) if lo + 600.0 < rate / 2.0 else rate / 2.0 - 100.0
    return np.asarray(ss.firwin(n_taps, [lo, hi], pass_zero=False, fs=rate), dtype=np.float64)


def rawboost(x: FloatArray, rate: int, rng: np.random.Generator) -> FloatArray:
    """One random RawBoost-style distortion (convolutive, impulsive or coloured additive, or convolutive +
    impulsive), at the level of the input."""
    y = np.asarray(x, dtype=np.float64)
    kind = int(rng.integers(0, 4))
    if kind in (0, 3):  # linear and non-linear convolutive noise
        acc = np.zeros_like(y)
        for power in range(1, int(rng.integers(2, 4)) + 1):
            acc += ss.lfilter(_band_fir(rng, rate), [1.0], y) ** power
        peak = np.max(np.abs(acc)) + 1e-9
        y = acc / peak * (np.max(np.abs(y)) + 1e-9)
    if kind in (1, 3):  # impulsive signal-dependent noise on up to 10% of the samples
        n = int(y.size * rng.uniform(0.0, 0.1))
        idx = rng.choice(y.size, size=n, replace=False) if n else np.zeros(0, dtype=int)
        y = y.copy()
        y[idx] += y[idx] * rng.uniform(-2.0, 2.0, size=n) * rng.uniform(0.0, 0.5)
    if kind == 2:  # stationary coloured additive noise
        noise = ss.lfilter(_band_fir(rng, rate), [1.0], rng.standard_normal(y.size))
        snr = float(rng.uniform(10.0, 40.0))
        gain = np.sqrt(np.mean(y**2) / (np.mean(noise**2) + 1e-12) / 10 ** (snr / 10.0))
        y = y + gain * noise
    return np.asarray(y, dtype=np.float32)


def _coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    colour = int(rng.integers(0, 3))
    if colour == 0:
        return white
    spec = np.fft.rfft(white)
    f = np.arange(spec.size, dtype=np.float64) + 1.0
    spec = spec / (np.sqrt(f) if colour == 1 else f)  # pink (1/f power) or brown (1/f^2)
    return np.fft.irfft(spec, n)


def _packet_loss(x: FloatArray, rng: np.random.Generator) -> FloatArray:
    frame = RATE // 50  # 20 ms
    y = np.asarray(x, dtype=np.float32).copy()
    rate_lost = float(rng.uniform(0.01, 0.06))
    repeat = bool(rng.random() < 0.6)
    fade = np.linspace(1.0, 0.3, frame, dtype=np.float32)
    for k in range(1, y.size // frame):
        if rng.random() < rate_lost:
            s = k * frame
            y[s : s + frame] = y[s - frame : s] * fade if repeat else 0.0
    return y


def chain(x: FloatArray, rate: int, rng: np.random.Generator, config: ChannelConfig | None = None) -> FloatArray:
    """One random telephone channel applied to ``x`` (mono float32 at ``rate``); 8 kHz float32 out."""
    cfg = config or ChannelConfig()
    y = np.asarray(x, dtype=np.float32).ravel()
    if y.size == 0 or not np.all(np.isfinite(y)):
        raise AntiSpoofError("the channel needs non-empty audio of finite samples")
    target = -26.0 + float(rng.uniform(*cfg.level_db))
    y = y * np.float32(10 ** ((target - _rms_db(y)) / 20.0))
    if rng.random() < cfg.p_rawboost:
        y = rawboost(y, rate, rng)
    if rng.random() < cfg.p_bandpass:
        lo, hi = float(rng.uniform(150.0, 400.0)), float(rng.uniform(3000.0, 3700.0))
        hi = min(hi, rate / 2.0 - 50.0)
        sos = ss.butter(int(rng.integers(2, 6)), [lo, hi], btype="bandpass", fs=rate, output="sos")
        y = ss.sosfilt(sos, y).astype(np.float32)
    y = resample(y, rate, RATE) if rate != RATE else y
    y = np.clip(y, -1.0, 1.0).astype(np.float32)
    weights = np.asarray(cfg.codec_weights, dtype=np.float64)
    codec = CODECS[int(rng.choice(len(CODECS), p=weights / weights.sum()))]
    if codec in ("gsm", "amr-nb") and not sox_available():
        log.warning("sox is not installed: GSM and AMR-NB are replaced by G.711 in the channel")
        codec = "mulaw"
    if codec == "mulaw":
        y = mulaw_decode(mulaw_encode(y))
    elif codec == "alaw":
        y = alaw_decode(alaw_encode(y))
    elif codec in ("gsm", "amr-nb"):
        y = sox_codec(y, codec, amr_mode=int(rng.integers(0, 8)))
    if rng.random() < cfg.p_packet_loss:
        y = _packet_loss(y, rng)
    if rng.random() < cfg.p_noise:
        noise = _coloured_noise(y.size, rng)
        snr = float(rng.uniform(*cfg.snr_db))
        gain = np.sqrt(np.mean(y.astype(np.float64) ** 2) / (np.mean(noise**2) + 1e-12) / 10 ** (snr / 10.0))
        y = (y + gain * noise).astype(np.float32)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def fixed_telephone(x: FloatArray, rate: int, codec: str = "mulaw") -> FloatArray:
    """The evaluation channel: 300-3400 Hz band-pass, 8 kHz, G.711 (``mulaw`` or ``alaw``); 8 kHz float32 out."""
    if codec not in ("mulaw", "alaw"):
        raise AntiSpoofError(f"codec {codec!r} is not supported here; use mulaw or alaw")
    y = np.asarray(x, dtype=np.float32).ravel()
    sos = ss.butter(4, [300.0, min(3400.0, rate / 2.0 - 50.0)], btype="bandpass", fs=rate, output="sos")
    y = ss.sosfilt(sos, y).astype(np.float32)
    y = np.clip(resample(y, rate, RATE) if rate != RATE else y, -1.0, 1.0)
    return mulaw_decode(mulaw_encode(y)) if codec == "mulaw" else alaw_decode(alaw_encode(y))
