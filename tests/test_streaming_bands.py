"""Streaming verification in two bands: a wideband stream is scored at full band when the claimed voiceprint has
one, each evaluation embeds only the band it scores, and every claim costs the same embeddings; phone streams
embed the telephone band alone, as before. A stub engine tells the bands apart by their energy above 4 kHz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceauth.audio.codecs import l16_encode, mulaw_encode
from voiceauth.audio.stream import StreamingFrontEnd
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.pipeline import Pipeline
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.models import AuditEvent
from voiceauth.streaming import StreamDecision, StreamingPolicy, StreamingVerifier
from voiceauth.verification import Decision
from voiceauth.watchlist import COSINE_OPERATING_POINTS

SAMPLES = Path(__file__).resolve().parents[1] / "audio_samples"
TENANT = "acme"
E0 = np.eye(192, dtype=np.float32)[0]
E_ORTHO = np.eye(192, dtype=np.float32)[1]  # cosine 0: a clear REJECT


class BandEngine:
    """Returns ``wide`` for audio with energy above 4.2 kHz (the full band), ``tel`` otherwise."""

    dim, precision, device = 192, "fp32", "cpu"

    def __init__(self, tel: FloatArray, wide: FloatArray) -> None:
        self.tel, self.wide, self.seen = tel, wide, []

    def embed(self, wav: FloatArray, sample_rate: int, *, telephone: bool = False) -> FloatArray:
        power = np.abs(np.fft.rfft(wav)) ** 2
        high = power[np.fft.rfftfreq(wav.size, 1 / sample_rate) > 4200].sum() / max(power.sum(), 1e-20)
        band = "full" if high > 1e-3 else "telephone"
        # the engine is told which band it embeds (the telephone band goes through the telephone-adapted network)
        assert telephone == (band == "telephone"), (band, telephone)
        self.seen.append(band)
        return self.wide if band == "full" else self.tel

    def embed_batch(self, wavs: list[FloatArray], sample_rate: int, *, telephone: bool = False) -> FloatArray:
        return np.stack([self.embed(w, sample_rate) for w in wavs])


@pytest.fixture()
def speech() -> np.ndarray:
    x, sr = sf.read(SAMPLES / "librispeech_1040-133433-0000.flac", dtype="float32")
    assert sr == 16000
    return x


@pytest.fixture()
def pipe(tmp_path: Path, speech: np.ndarray) -> Pipeline:
    """``wide``: enrolled from 16 kHz audio (both bands); ``phone``: from a G.711 call (telephone band only)."""
    settings = Settings(home=tmp_path, scoring_backend="cosine", enroll_min_speech_s=3.0)
    engine = BandEngine(E0, E0)
    p = Pipeline.from_settings(settings, engine=engine, scorer=CosineScorer(), operating_points=COSINE_OPERATING_POINTS)
    assert p.frontend is not None
    for ref in ("wide", "phone"):
        p.register(TENANT, ref, consent_method="test", consent_text_version="v1", actor="test")
    assert p.enroll(TENANT, "wide", p.frontend.from_samples(speech, 16000), actor="test").enrolled  # type: ignore[attr-defined]
    call = speech[::2].copy()  # 8 kHz (aliasing is fine for a stub engine)
    assert p.enroll(TENANT, "phone", mulaw_encode(call), fmt="mulaw", sample_rate=8000, actor="test").enrolled
    assert engine.seen == ["telephone", "full", "telephone"]
    with p.store.transaction() as tx:
        for ref, has_wide in (("wide", True), ("phone", False)):
            vp = tx.voiceprint(tx.require_speaker(tx.tenant(TENANT).id, ref))
            assert vp is not None and (vp.embedding_wide is not None) == has_wide
    return p


def stream(pipe: Pipeline, engine: BandEngine, ref: str, data: bytes, fmt: str, rate: int) -> StreamDecision:
    sv = StreamingVerifier(
        frontend=StreamingFrontEnd(Settings(), sample_rate=rate, fmt=fmt),
        engine=engine,
        verifier=pipe.verifier,
        tenant=TENANT,
        speaker_ref=ref,
        policy=StreamingPolicy(min_speech_s=3.0, embed_every_s=0.5, max_speech_s=8.0),
    )
    block = rate // 5 * (2 if fmt == "l16" else 1)  # 200 ms of bytes
    for i in range(0, len(data), block):
        if (d := sv.feed(data[i : i + block])) is not None:
            return d
    return sv.finish()


def band_of(pipe: Pipeline, attempt_id: int | None) -> str | None:
    with pipe.store.transaction() as tx:
        for e in tx.session.query(AuditEvent).filter_by(action="verify"):
            details = json.loads(e.details)
            if details["attempt"] == attempt_id:
                return details.get("band")
    raise AssertionError(f"no audit event for attempt {attempt_id}")


def test_wideband_stream_scores_the_full_band_of_a_wideband_voiceprint(pipe: Pipeline, speech: np.ndarray) -> None:
    engine = BandEngine(tel=E_ORTHO, wide=E0)  # only the full band matches: an ACCEPT shows it was scored
    d = stream(pipe, engine, "wide", l16_encode(speech), "l16", 16000)
    assert d.decision == Decision.ACCEPT and d.early and d.result.band == "full"
    assert engine.seen == ["full", "telephone"]  # the evaluation's band, then the other one for the decision
    assert band_of(pipe, d.result.attempt_id) == "full"


def test_wideband_stream_scores_the_telephone_band_of_a_phone_voiceprint(pipe: Pipeline, speech: np.ndarray) -> None:
    engine = BandEngine(tel=E0, wide=E_ORTHO)  # only the telephone band matches
    d = stream(pipe, engine, "phone", l16_encode(speech), "l16", 16000)
    assert d.decision == Decision.ACCEPT and d.early and d.result.band == "telephone"
    assert engine.seen == ["telephone", "full"]  # the same work as a wideband voiceprint's
    assert band_of(pipe, d.result.attempt_id) == "telephone"


def test_unknown_claim_costs_the_same_embeddings(pipe: Pipeline, speech: np.ndarray) -> None:
    engine = BandEngine(tel=E0, wide=E0)
    d = stream(pipe, engine, "nobody", l16_encode(speech), "l16", 16000)
    assert d.decision == Decision.NOT_ENROLLED and d.public == "REJECT"
    assert sorted(engine.seen) == ["full", "telephone"]


def test_phone_stream_embeds_the_telephone_band_once_per_evaluation(pipe: Pipeline, speech: np.ndarray) -> None:
    engine = BandEngine(tel=E0, wide=E_ORTHO)
    d = stream(pipe, engine, "wide", mulaw_encode(speech[::2].copy()), "mulaw", 8000)
    assert d.decision == Decision.ACCEPT and d.early and d.result.band == "telephone"
    assert engine.seen == ["telephone"]
