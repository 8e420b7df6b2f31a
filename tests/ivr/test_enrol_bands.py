"""Passive enrolment during a call keeps the full band of a wideband (L16 16 kHz) call and none of a phone one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ivr.serializers.base import EnrollmentOut
from ivr.serializers.l16 import L16Serializer
from ivr.session import CallSession
from tests.ivr.conftest import TENANT, build_ivr, ivr_settings
from voiceauth.audio.codecs import l16_encode
from voiceauth.embedding.fake import FakeEngine

SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"


@pytest.mark.parametrize(("rate", "wide"), [(16000, True), (8000, False)])
def test_call_enrolment_stores_the_full_band_of_wideband_calls(tmp_path: Path, rate: int, wide: bool) -> None:
    engine = FakeEngine()
    pipe, ivr = build_ivr(ivr_settings(tmp_path), engine)
    x, sr = sf.read(SAMPLES / "librispeech_1040-133433-0000.flac", dtype="float32")
    audio = x if rate == 16000 else x[::2].copy()
    meta = {
        "content-type": f"audio/l16;rate={rate}",
        "call_id": f"enrol-{rate}",
        "speaker_id": "reader",
        "mode": "enroll",
        "consent": "yes",
    }
    start = L16Serializer().deserialize(json.dumps(meta))
    assert start is not None
    session = CallSession(ivr, start, tenant=TENANT, protocol="l16")
    session.opening()
    pcm = l16_encode(audio)
    for i in range(0, len(pcm), rate // 5):
        session.on_audio(pcm[i : i + rate // 5])
    out = session.end("stop")
    ivr.close()
    (res,) = [o for o in out if isinstance(o, EnrollmentOut)]
    assert res.enrolled, res
    assert engine.calls == (2 if wide else 1)
    with pipe.store.transaction() as tx:
        spk = tx.require_speaker(tx.tenant(TENANT).id, "reader")
        vp = tx.voiceprint(spk)
        assert vp is not None and (vp.embedding_wide is not None) == wide
        assert [u.embedding_wide is not None for u in tx.enrollment_utterances(spk)] == [wide]
    assert np.isfinite(vp.embedding).all()
