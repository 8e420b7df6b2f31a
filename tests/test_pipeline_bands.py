"""Dual-band voiceprints end to end with the real model: LibriSpeech 16 kHz and G.711 8 kHz through the pipeline.

A reader of the evaluation half (never in the shipped cohort) enrols from 12 s of one recording and is verified on
the other 5 s, as 16 kHz WAV uploads or as an 8 kHz G.711 call. The band each attempt was scored in is read from
its audit event.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import MemoEngine
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.config import Settings
from voiceauth.embedding.fake import FakeEngine
from voiceauth.pipeline import Pipeline, default_scoring
from voiceauth.scoring.base import CosineScorer, Scorer
from voiceauth.scoring.evalsets import load_librispeech, split_readers, telephone_channel
from voiceauth.store.models import AuditEvent
from voiceauth.store.testing import FakeClock, make_utterance
from voiceauth.verification import Decision
from voiceauth.watchlist import COSINE_OPERATING_POINTS

TARGET, IMPOSTOR = "5322", "5163"  # long, clean recordings of the evaluation half (M, F)


@pytest.fixture(scope="module")
def memo_engine(engine):  # type: ignore[no-untyped-def]
    return MemoEngine(engine)


@pytest.fixture(scope="module")
def readers(librispeech_dir: Path) -> dict[str, np.ndarray]:
    files, sex = load_librispeech(librispeech_dir)
    _, evaluation = split_readers(list(files), sex)
    assert TARGET in evaluation and IMPOSTOR in evaluation
    out = {}
    for r in (TARGET, IMPOSTOR):
        x, sr = sf.read(files[r], dtype="float32")
        assert sr == 16000
        out[r] = x
    return out


@pytest.fixture(params=["cosine", "production"])
def scoring(request: pytest.FixtureRequest) -> tuple[Scorer, dict[str, float]]:
    if request.param == "cosine":
        return CosineScorer(), dict(COSINE_OPERATING_POINTS)
    return default_scoring(Settings())  # the shipped production scorer (both channel back ends)


def wav16(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def g711(x: np.ndarray) -> bytes:
    """An 8 kHz mu-law call of 16 kHz audio (telephone band filter, resampling, one byte per sample)."""
    y, rate = telephone_channel(x, 16000, "g711_mulaw")
    assert rate == 8000
    return mulaw_encode(y)


def bands(pipe: Pipeline) -> list[str | None]:
    with pipe.store.transaction() as tx:
        events = tx.session.query(AuditEvent).filter_by(action="verify").order_by(AuditEvent.seq)
        return [json.loads(e.details).get("band") for e in events]


def make_pipe(tmp_path: Path, engine: object, scoring: tuple[Scorer, dict[str, float]]) -> Pipeline:
    scorer, points = scoring
    settings = Settings(home=tmp_path, data_dir=tmp_path / "data", replay_check=False)
    pipe = Pipeline.from_settings(
        settings,
        engine=engine,
        scorer=scorer,
        operating_points=points,
        clock=FakeClock(),  # type: ignore[arg-type]
    )
    pipe.register("acme", "reader", consent_method="web", consent_text_version="v1", actor="test")
    return pipe


def enrol_pieces(x: np.ndarray) -> list[np.ndarray]:
    return [x[: 6 * 16000], x[6 * 16000 : 12 * 16000]]


@pytest.mark.model
def test_wideband_enrolment_verifies_wideband_at_full_band_and_calls_in_the_telephone_band(
    memo_engine: MemoEngine, readers: dict[str, np.ndarray], tmp_path: Path, scoring: tuple[Scorer, dict[str, float]]
) -> None:
    pipe = make_pipe(tmp_path, memo_engine, scoring)
    target = readers[TARGET]
    for piece in enrol_pieces(target):
        r = pipe.enroll("acme", "reader", wav16(piece), actor="test")
        assert r.accepted, r.feedback
    assert r.enrolled
    with pipe.store.transaction() as tx:
        vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "reader"))
        assert vp is not None and vp.embedding_wide is not None  # both bands stored
        assert all(u.embedding_wide is not None for u in tx.enrollment_utterances(tx.require_speaker(1, "reader")))
    probe = target[12 * 16000 :]
    wide = pipe.verify("acme", "reader", wav16(probe), call_id="web-1")
    assert wide.decision == Decision.ACCEPT and wide.band == "full", wide
    call = pipe.verify("acme", "reader", g711(probe), call_id="call-1", fmt="mulaw", sample_rate=8000)
    assert call.decision == Decision.ACCEPT and call.band == "telephone", call
    impostor = pipe.verify("acme", "reader", wav16(readers[IMPOSTOR][: 5 * 16000]), call_id="web-2")
    assert impostor.decision == Decision.REJECT and impostor.band == "full", impostor
    assert bands(pipe) == ["full", "telephone", "full"]


@pytest.mark.model
def test_phone_enrolment_verifies_wideband_uploads_in_the_telephone_band(
    memo_engine: MemoEngine, readers: dict[str, np.ndarray], tmp_path: Path, scoring: tuple[Scorer, dict[str, float]]
) -> None:
    pipe = make_pipe(tmp_path, memo_engine, scoring)
    target = readers[TARGET]
    for piece in enrol_pieces(target):
        r = pipe.enroll("acme", "reader", g711(piece), fmt="mulaw", sample_rate=8000, actor="test")
        assert r.accepted, r.feedback
    assert r.enrolled
    with pipe.store.transaction() as tx:
        vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "reader"))
        assert vp is not None and vp.embedding_wide is None  # phone audio has no full band
    res = pipe.verify("acme", "reader", wav16(target[12 * 16000 :]), call_id="web-1")
    assert res.decision == Decision.ACCEPT and res.band == "telephone", res
    assert bands(pipe) == ["telephone"]


def test_each_band_is_embedded_by_its_own_network_whoever_is_claimed(tmp_path: Path) -> None:
    """The telephone band goes to the engine with ``telephone=True`` (the telephone-adapted network), the full band
    with ``telephone=False``; a wideband probe is embedded in both bands whatever the claimed voiceprint holds."""

    class RecordingEngine(FakeEngine):
        def __init__(self) -> None:
            super().__init__()
            self.flags: list[bool] = []

        def embed(self, wav, sample_rate, *, telephone=False):  # type: ignore[no-untyped-def]
            self.flags.append(telephone)
            return super().embed(wav, sample_rate)

    engine = RecordingEngine()
    pipe = make_pipe(tmp_path, engine, (CosineScorer(), dict(COSINE_OPERATING_POINTS)))
    x = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.1
    pipe.enroll("acme", "reader", make_utterance(x, 16000, wide=True))
    pipe.enroll("acme", "reader", make_utterance(x, 16000, net_speech_s=4.0))  # a telephone-band-only utterance
    assert engine.flags == [True, False, True]
    pipe.verify("acme", "reader", make_utterance(x, 16000, wide=True))
    pipe.verify("acme", "nobody", make_utterance(x, 16000, wide=True))  # unknown speaker: the same work
    pipe.verify("acme", "reader", make_utterance(x[: 16000 * 3 // 2], 16000, wide=True))  # too short: not embedded
    assert engine.flags == [True, False, True, True, False, True, False]
