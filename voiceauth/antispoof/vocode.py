"""Vocoder resynthesis of bona fide speech: spoof training data that carries vocoder artefacts without any TTS.

Wang & Yamagishi (ICASSP 2023) showed that countermeasures trained on vocoded copies of bona fide speech learn the
artefacts that synthetic speech shares, and generalise to unseen TTS engines. Two classic vocoders are used here:

* WORLD (``pyworld``): F0 by DIO + StoneMask, spectral envelope by CheapTrick, aperiodicity by D4C, resynthesised;
  optionally with a random F0 scale and a spectral-envelope warp, so the copies are not exact;
* MLSA (``pysptk``): mel-cepstrum of order 24-40 and a pulse/noise excitation through the MLSA filter.

Both take and return mono float32 at the same rate. ``pyworld`` and ``pysptk`` are training-only dependencies
(``pip install pyworld pysptk``); the service never imports this module.
"""

from __future__ import annotations

import numpy as np

from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.embedding.base import FloatArray

__all__ = ["VOCODERS", "mlsa_resynth", "vocode", "world_resynth"]

VOCODERS: tuple[str, ...] = ("world", "mlsa")


def world_resynth(x: FloatArray, rate: int, rng: np.random.Generator | None = None) -> FloatArray:
    """WORLD analysis + synthesis (with a small random F0 scale and envelope warp when ``rng`` is given)."""
    try:
        import pyworld
    except ImportError as exc:
        raise AntiSpoofError("pyworld is not installed; `pip install pyworld` to vocode training data") from exc
    d = np.asarray(x, dtype=np.float64).ravel()
    f0, t = pyworld.dio(d, rate, frame_period=5.0)
    f0 = pyworld.stonemask(d, f0, t, rate)
    sp = pyworld.cheaptrick(d, f0, t, rate)
    ap = pyworld.d4c(d, f0, t, rate)
    if rng is not None:
        f0 = f0 * float(rng.uniform(0.9, 1.1))
        warp = float(rng.uniform(0.95, 1.05))
        bins = sp.shape[1]
        src = np.clip(np.arange(bins) / warp, 0, bins - 1)
        sp = np.stack([np.interp(src, np.arange(bins), row) for row in sp])
    y = pyworld.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), rate, frame_period=5.0)
    return _match(y, d)


def mlsa_resynth(x: FloatArray, rate: int, rng: np.random.Generator | None = None) -> FloatArray:
    """Mel-cepstral analysis and MLSA-filter synthesis from a pulse/noise excitation."""
    try:
        import pysptk
        import pyworld
        from pysptk.synthesis import MLSADF, Synthesizer
    except ImportError as exc:
        raise AntiSpoofError(
            "pysptk and pyworld are needed to vocode training data (`pip install pysptk pyworld`)"
        ) from exc
    d = np.asarray(x, dtype=np.float64).ravel()
    hop = int(rate * 0.005)
    frame = 512 if rate > 8000 else 256
    narrow = rate <= 8000
    order = (int(rng.integers(16, 25)) if narrow else int(rng.integers(24, 41))) if rng is not None else 24
    alpha = 0.31 if narrow else (0.42 if rate <= 16000 else 0.466)
    f0, _ = pyworld.dio(d, rate, frame_period=5.0)
    dither = np.random.default_rng(0).standard_normal(d.size) * 1e-4  # digital silence breaks mcep's solver
    pad = np.pad(d + dither, (frame // 2, frame // 2))
    n_frames = min(f0.size, 1 + (pad.size - frame) // hop)
    frames = np.stack([pad[i * hop : i * hop + frame] for i in range(n_frames)]) * np.blackman(frame)
    mc = np.zeros((n_frames, order + 1))
    for i in range(n_frames):  # frame by frame: a frame the solver cannot take keeps the previous envelope
        try:
            mc[i] = pysptk.mcep(frames[i], order=order, alpha=alpha, eps=1e-6, etype=1, itype=0)
        except RuntimeError:
            mc[i] = mc[i - 1] if i else 0.0
    pitch = np.where(f0[:n_frames] > 0, rate / np.maximum(f0[:n_frames], 1e-3), 0.0)
    source = pysptk.excite(pitch.astype(np.float64), hop)
    b = pysptk.mc2b(mc, alpha)
    y = Synthesizer(MLSADF(order=order, alpha=alpha), hop).synthesis(source, b)
    return _match(y, d)


def vocode(x: FloatArray, rate: int, vocoder: str, rng: np.random.Generator | None = None) -> FloatArray:
    if vocoder == "world":
        return world_resynth(x, rate, rng)
    if vocoder == "mlsa":
        return mlsa_resynth(x, rate, rng)
    raise AntiSpoofError(f"vocoder {vocoder!r} is not supported; use world or mlsa")


def _match(y: np.ndarray, like: np.ndarray) -> FloatArray:
    """Same length and RMS as the input; finite."""
    out = np.zeros(like.size, dtype=np.float64)
    n = min(out.size, y.size)
    out[:n] = np.nan_to_num(y[:n])
    gain = np.sqrt(np.mean(like**2) / (np.mean(out**2) + 1e-12))
    return np.clip(out * gain, -1.0, 1.0).astype(np.float32)
