"""The session sizes the audio blocks the transport hands it: large while the verifier is far from an evaluation,
``ivr_feed_ms`` near one (so the decision is not delayed) and while the flow collects digits."""

from __future__ import annotations

import json
from pathlib import Path

from ivr.serializers.base import DecisionOut
from ivr.serializers.l16 import L16Serializer
from ivr.session import CallSession
from tests.ivr.conftest import TENANT, build_ivr, fsdd_digits, ivr_settings
from voiceauth.audio.codecs import l16_encode
from voiceauth.embedding.fake import FakeEngine


def test_blocks_are_large_far_from_an_evaluation_and_small_near_it(tmp_path: Path, fsdd: Path) -> None:
    pipe, ivr = build_ivr(ivr_settings(tmp_path), FakeEngine())
    pipe.register(TENANT, "george", consent_method="t", consent_text_version="v1", actor="t")
    meta = {"content-type": "audio/l16;rate=8000", "call_id": "c-blocks", "speaker_id": "george"}
    start = L16Serializer().deserialize(json.dumps(meta))
    assert start is not None
    session = CallSession(ivr, start, tenant=TENANT, protocol="l16")
    session.opening()
    feed = 2 * 8000 * ivr.settings.ivr_feed_ms // 1000
    pcm = l16_encode(fsdd_digits("george", "3141592653", 40))
    sizes: list[int] = []
    decided_in: int | None = None
    blocks_to_decision = bytes_to_decision = 0
    pos = 0
    while pos < len(pcm):
        n = session.audio_block_bytes
        out = session.on_audio(pcm[pos : pos + n])
        sizes.append(n)
        pos += n
        if decided_in is None and any(isinstance(o, DecisionOut) for o in out):
            decided_in = n
            blocks_to_decision, bytes_to_decision = len(sizes), pos
            assert session.flow.collecting  # REJECT (george has no voiceprint) -> PIN by DTMF
    session.end("stop")
    ivr.close()
    assert sizes[0] == 16000 and max(sizes) == 16000  # 1 s blocks at most, from the start of the claim
    assert decided_in == feed  # the deciding audio came in an ivr_feed_ms block
    assert sizes[-1] == feed  # collecting digits: short blocks again
    assert blocks_to_decision < bytes_to_decision / feed / 2  # far fewer blocks than ivr_feed_ms ones
