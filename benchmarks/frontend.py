"""Front-end measurements: VAD cost, net speech under padding, telephone vs wideband embedding cosine.

    .venv/bin/python -m benchmarks.frontend [--files 11] [--no-model]

Reads ``../shared/data/librispeech-cohort``; prints one line per measurement. The cosine part needs the real
ECAPA weights (``voiceauth models fetch``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceauth.audio.codecs import mulaw_encode
from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.resample import resample
from voiceauth.audio.vad import VadStream
from voiceauth.config import Settings
from voiceauth.embedding.base import cosine

LIBRI = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech-cohort"


def _ms_per_s(fn: Callable[[], object], seconds: float) -> float:
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=11, help="LibriSpeech files (every 25th of the cohort).")
    ap.add_argument("--no-model", action="store_true", help="Skip the embedding cosine measurement.")
    args = ap.parse_args()
    files = sorted(LIBRI.glob("*.flac"))[::25][: args.files]
    xs = [sf.read(f, dtype="float32")[0] for f in files]
    total = sum(x.size for x in xs) / 16000
    fe = FrontEnd(Settings())
    fe.from_samples(xs[0], 16000)  # load the VAD model

    def vad(rate: int, signals: list[np.ndarray]) -> None:
        for x in signals:
            v = VadStream(rate)
            v.feed(x)
            v.flush()

    x8 = [resample(x, 16000, 8000) for x in xs]
    mu = [mulaw_encode(x) for x in x8]

    def stream() -> None:
        for m in mu:
            s = fe.stream(8000, "mulaw")
            for i in range(0, len(m), 160):
                s.feed(m[i : i + 160])
                _ = s.net_speech_s
            s.finish()

    print(f"{len(files)} LibriSpeech files, {total:.0f} s")
    print(f"VAD 16 kHz: {_ms_per_s(lambda: vad(16000, xs), total):.1f} ms per s of audio")
    print(f"VAD 8 kHz: {_ms_per_s(lambda: vad(8000, x8), total):.1f} ms per s of audio")
    print(f"front end, whole 16 kHz file: {_ms_per_s(lambda: [fe.from_samples(x, 16000) for x in xs], total):.1f} ms/s")
    print(f"front end, mu-law in 20 ms frames: {_ms_per_s(stream, total):.1f} ms per s of audio")

    rng = np.random.default_rng(3)
    ratios = []
    for x in xs:
        pad = np.zeros(5 * 16000, dtype=np.float32)
        padded = np.concatenate([pad, x, pad])
        padded = padded + 10 ** (-55 / 20) * rng.standard_normal(padded.size).astype(np.float32)
        ratios.append(
            fe.from_samples(padded, 16000).quality.net_speech_s / fe.from_samples(x, 16000).quality.net_speech_s
        )
    print(
        f"net speech padded / unpadded (5 s silence + -55 dBFS noise each side): "
        f"min {min(ratios):.3f} max {max(ratios):.3f}"
    )

    if args.no_model:
        return
    from voiceauth.embedding.factory import create_engine

    engine = create_engine(Settings())
    for band in ("telephone", "wide"):
        fb = FrontEnd(Settings(audio_band=band))
        scores = []
        for x, m in zip(xs, mu, strict=True):
            wide = fb.from_samples(x, 16000)
            phone = fb.from_bytes(m, fmt="mulaw", sample_rate=8000)
            scores.append(cosine(engine.embed(wide.speech, 16000), engine.embed(phone.speech, 16000)))
        print(
            f"cosine(16 kHz wideband, 8 kHz mu-law copy), audio_band={band}: "
            f"min {min(scores):.3f} mean {np.mean(scores):.3f}"
        )


if __name__ == "__main__":
    main()
