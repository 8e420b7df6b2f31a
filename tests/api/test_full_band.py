"""Upload verification in two bands (FakeEngine): the route embeds wideband audio in both bands, whoever is
claimed, scores the full band when the voiceprint has one, and shows telephony keys the decision alone."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from tests.api.conftest import SAMPLES, Api, wav_bytes
from voiceauth.audio.codecs import mulaw_encode
from voiceauth.embedding.fake import FakeEngine
from voiceauth.store.models import AuditEvent


def verify_bands(api: Api) -> list[str | None]:
    with api.store.transaction() as tx:
        events = tx.session.query(AuditEvent).filter_by(action="verify").order_by(AuditEvent.seq)
        return [json.loads(e.details).get("band") for e in events]


def test_upload_verification_scores_the_full_band_of_wideband_voiceprints(
    api_factory: Callable[..., Api],
) -> None:
    engine = FakeEngine()  # counts embeddings (one per clip, batched or not)
    api = api_factory(engine=engine)
    x, sr = sf.read(SAMPLES / "librispeech_1040-133433-0000.flac", dtype="float32")
    assert sr == 16000
    assert api.register("reader").status_code == 201
    for piece in (x[: 5 * sr], x[5 * sr : 10 * sr]):
        r = api.enroll("reader", wav_bytes(piece, sr))
        assert r.status_code == 200 and r.json()["feedback"] == ["OK"], r.json()
    assert r.json()["enrolled"]
    assert engine.calls == 4  # each wideband utterance: both bands
    with api.store.transaction() as tx:
        vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "reader"))
        assert vp is not None and vp.embedding_wide is not None
    probe = x[10 * sr :]
    r = api.verify("reader", wav_bytes(probe, sr))
    assert r.status_code == 200 and set(r.json()) == {"decision"}  # no band, no score for telephony keys
    call = mulaw_encode(resample_poly(probe, 1, 2))
    r = api.verify("reader", call, format="mulaw", sample_rate="8000")
    assert r.status_code == 200 and set(r.json()) == {"decision"}
    assert verify_bands(api) == ["full", "telephone"]
    assert engine.calls == 4 + 2 + 1  # the G.711 call has no full band
    # an unknown speaker's wideband upload costs the same engine work as an enrolled one's
    r = api.verify("nobody", wav_bytes(probe, sr))
    assert r.status_code == 200 and r.json() == {"decision": "REJECT"}
    assert engine.calls == 7 + 2


def test_upload_of_wideband_audio_to_a_phone_voiceprint_scores_the_telephone_band(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory()
    x, sr = sf.read(SAMPLES / "librispeech_1040-133433-0000.flac", dtype="float32")
    assert api.register("reader").status_code == 201
    for piece in (x[: 5 * sr], x[5 * sr : 10 * sr]):
        call = mulaw_encode(resample_poly(piece, 1, 2))
        assert api.enroll("reader", call, format="mulaw", sample_rate="8000").json()["feedback"] == ["OK"]
    with api.store.transaction() as tx:
        vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "reader"))
        assert vp is not None and vp.embedding_wide is None
    r = api.verify("reader", wav_bytes(x[10 * sr :], sr), who="acme:security")
    assert r.status_code == 200 and "score" in r.json() and r.json()["band"] == "telephone"
    assert verify_bands(api) == ["telephone"]
    assert np.isfinite(r.json()["score"])
