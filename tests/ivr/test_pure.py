"""Pure parts of the IVR edge: Goertzel DTMF, the call-flow machine, the serializers, PINs and the outcome webhook."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ivr.calls import CallOutcome, CallRegistry, WebhookNotifier, sign_webhook
from ivr.dtmf import DIGITS, DtmfDetector, dtmf_tone
from ivr.flows import STANDARD_FLOW, Flow, FlowMachine, Step
from ivr.flows.machine import CheckPin, Hangup, Play, StartVoice, Transfer
from ivr.pins import PinBook, hash_pin, verify_pin
from ivr.serializers.audiohook import AudioHookSerializer, choose_offer, verify_signature
from ivr.serializers.base import DecisionOut, HangupOut, PromptOut, ProtocolError
from ivr.serializers.l16 import L16Serializer, parse_content_type
from ivr.serializers.twilio import TwilioSerializer
from voiceauth.audio.codecs import l16_encode, mulaw_decode
from voiceauth.errors import ConfigError

SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"


def _speech(name: str) -> np.ndarray:
    return sf.read(SAMPLES / name, dtype="float32")[0]


# -- DTMF ---------------------------------------------------------------------------------------------------------
def test_every_digit_is_detected_once() -> None:
    gap = np.zeros(400, dtype=np.float32)
    digits = "".join(DIGITS)
    sig = np.concatenate([np.concatenate([dtmf_tone(d, duration_s=0.06), gap]) for d in digits])
    det = DtmfDetector()
    found = [d for i in range(0, sig.size, 137) for d in det.feed(sig[i : i + 137])]  # odd chunking
    assert "".join(found) == digits


def test_digits_over_speech_and_noise() -> None:
    rng = np.random.default_rng(3)
    speech = np.concatenate([_speech("theo_a.wav"), _speech("nicolas_b.wav")])
    sig = speech[: 8000 * 4].copy()
    pin = "90#7"
    for k, d in enumerate(pin):
        at = int((0.4 + 0.8 * k) * 8000)
        tone = dtmf_tone(d, duration_s=0.08, level=0.2)
        sig[at : at + tone.size] += tone
    sig += rng.normal(0, 0.01, sig.size).astype(np.float32)
    assert "".join(DtmfDetector().feed(sig)) == pin


def test_speech_alone_is_not_a_digit() -> None:
    speech = np.concatenate([_speech(f"{s}_{k}.wav") for s in ("george", "jackson", "yweweler") for k in "abc"])
    assert DtmfDetector().feed(speech) == []


def test_short_blip_is_not_a_digit() -> None:
    assert DtmfDetector().feed(np.concatenate([dtmf_tone("5", duration_s=0.02), np.zeros(800, np.float32)])) == []


# -- flows ----------------------------------------------------------------------------------------------------------
def test_pin_fallback_after_reject() -> None:
    m = FlowMachine(STANDARD_FLOW)
    acts = m.start(speaker_ref="cust-1")
    assert Play("greeting") in acts and StartVoice("cust-1") in acts
    acts = m.voice("REJECT", 4000)
    assert acts == [Play("enter_pin")] and m.collecting
    acts = [a for d in "1234" for a in m.digit(d, 5000)]
    assert CheckPin("cust-1", "1234") in acts
    acts = m.pin_result(True, 5200)
    assert Play("verified") in acts and Hangup("verified") in acts
    assert m.method == "pin" and m.outcome == "verified"


def test_not_enough_speech_and_wrong_pins_end_in_transfer() -> None:
    m = FlowMachine(STANDARD_FLOW)
    m.start(speaker_ref="cust-1")
    m.voice("NOT_ENOUGH_SPEECH", 9000)
    for _ in range(3):
        acts = [a for d in "0000" for a in m.digit(d, 10_000)]
        acts = m.pin_result(False, 10_000)
    assert Transfer("transfer") in acts and m.outcome == "transferred" and m.method == ""


def test_account_by_dtmf_then_timeouts_with_retry() -> None:
    m = FlowMachine(STANDARD_FLOW)
    assert Play("enter_account") in m.start()
    assert m.tick(14_000) == []
    assert m.tick(15_000) == [Play("enter_account")]  # one retry
    acts = [a for d in "4711#" for a in m.digit(d, 16_000)]  # '#' ends a short number
    assert StartVoice("4711") in acts and m.speaker_ref == "4711"
    assert m.voice_deadline_ms == 16_000 + STANDARD_FLOW.steps["verify"].timeout_ms


def test_account_timeout_after_retries_transfers() -> None:
    m = FlowMachine(STANDARD_FLOW)
    m.start()
    m.tick(15_000)
    assert Transfer("transfer") in m.tick(30_000)


def test_flow_definitions_are_checked() -> None:
    with pytest.raises(ConfigError, match="undefined step 'nowhere'"):
        Flow("bad", "a", {"a": Step("say", next="nowhere")})
    with pytest.raises(ConfigError, match="start step"):
        Flow("bad", "missing", {"a": Step("end")})


# -- serializers ----------------------------------------------------------------------------------------------------
def test_twilio_roundtrip() -> None:
    s = TwilioSerializer()
    assert s.deserialize(json.dumps({"event": "connected"})) is None
    start = s.deserialize(
        json.dumps(
            {
                "event": "start",
                "start": {
                    "streamSid": "MZ1",
                    "callSid": "CA1",
                    "customParameters": {"speaker_id": "c-1", "from": "+1555"},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "8000", "channels": "1"},
                },
            }
        )
    )
    assert start.call_id == "CA1" and start.speaker_ref == "c-1" and start.ani == "+1555"  # type: ignore[union-attr]
    outbound = s.deserialize(json.dumps({"event": "media", "media": {"track": "outbound", "payload": "AAAA"}}))
    assert outbound is None
    frames = s.serialize(PromptOut("x", l16_encode(np.full(400, 0.1, np.float32)), 8000))
    media = [json.loads(f) for f in frames[:-1]]
    assert [len(base64.b64decode(m["media"]["payload"])) for m in media] == [160, 160, 80]
    assert abs(float(mulaw_decode(base64.b64decode(media[0]["media"]["payload"]))[50]) - 0.1) < 0.01
    assert json.loads(frames[-1])["mark"]["name"] == "prompt:x"
    mark = json.loads(s.serialize(DecisionOut("ACCEPT", 3.2, 3400))[0])
    assert mark == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "voiceauth:decision:ACCEPT"}}
    with pytest.raises(ProtocolError, match="unknown Twilio event"):
        s.deserialize(json.dumps({"event": "nope"}))


def test_twilio_fork_sends_nothing_back() -> None:
    s = TwilioSerializer()
    s.deserialize(
        json.dumps(
            {"event": "start", "start": {"callSid": "CA2", "streamSid": "MZ", "customParameters": {"two_way": "false"}}}
        )
    )
    assert s.serialize(DecisionOut("ACCEPT", 3.0, 3000)) == []


def test_l16_metadata_and_frames() -> None:
    assert parse_content_type("audio/l16;rate=16000") == 16000 and parse_content_type("audio/L16") == 8000
    with pytest.raises(ProtocolError, match="11025"):
        parse_content_type("audio/l16;rate=11025")
    s = L16Serializer()
    with pytest.raises(ProtocolError, match="before the JSON metadata"):
        s.deserialize(b"\x00\x00")
    start = s.deserialize(json.dumps({"content-type": "audio/l16;rate=16000", "uuid": "u-1", "speaker_id": "c"}))
    assert start.call_id == "u-1" and start.sample_rate == 16000  # type: ignore[union-attr]
    with pytest.raises(ProtocolError, match="whole number"):
        s.deserialize(b"\x00\x00\x00")
    frames = s.serialize(PromptOut("p", l16_encode(np.zeros(800, np.float32)), 8000))
    assert all(len(f) == 640 for f in frames) and len(frames) == 5  # resampled to the stream's 16 kHz


def test_audiohook_offer_choice_and_state() -> None:
    stereo = {"type": "audio", "format": "PCMU", "channels": ["internal", "external"], "rate": 8000}
    assert choose_offer([{"type": "audio", "format": "OPUS", "channels": ["external"]}, stereo]) == stereo
    with pytest.raises(ProtocolError, match="external"):
        choose_offer([{"type": "audio", "format": "PCMU", "channels": ["internal"]}])
    s = AudioHookSerializer("sess")
    msg = {"version": "2", "id": "sess", "type": "open", "seq": 1, "serverseq": 0, "parameters": {"media": [stereo]}}
    start = s.deserialize(json.dumps(msg))
    assert start.channels == 2 and start.channel == 1 and not start.two_way  # type: ignore[union-attr]
    assert json.loads(start.ack[0])["type"] == "opened"  # type: ignore[union-attr]
    assert s.serialize(PromptOut("p", b"\x00\x00", 8000)) == []
    assert json.loads(s.serialize(HangupOut("error"))[0])["parameters"]["reason"] == "error"
    ahead = dict(msg, type="ping", seq=2, serverseq=9)
    with pytest.raises(ProtocolError, match="serverseq"):
        s.deserialize(json.dumps(ahead))


def test_signature_problems_are_named() -> None:
    h = {"x-api-key": "k", "signature-input": 'sig1=("@request-target");keyid="k"', "signature": "sig1=:AA==:"}
    assert "does not cover" in verify_signature(method="GET", path="/", authority="a", headers=h, secret=b"s")
    assert "not signed" in verify_signature(method="GET", path="/", authority="a", headers={}, secret=b"s")


# -- PINs, outcomes, webhook ----------------------------------------------------------------------------------------
def test_pins() -> None:
    encoded = hash_pin("2468")
    assert verify_pin("2468", encoded) and not verify_pin("2469", encoded) and not verify_pin("2468", "junk")
    book = PinBook()
    book.set("t", "c", "1111")
    assert book.check("t", "c", "1111") and not book.check("t", "c", "1112") and not book.check("t", "x", "1111")


def test_registry_is_bounded_and_tenant_scoped() -> None:
    reg = CallRegistry(capacity=2)
    for i in range(3):
        reg.put(CallOutcome(call_id=f"c{i}", tenant="a", protocol="twilio", speaker_id="s"))
    assert reg.get("a", "c0") is None and reg.get("b", "c2") is None
    assert [c.call_id for c in reg.for_speaker("a", "s")] == ["c2", "c1"]


def test_webhook_posts_signed_outcomes_to_a_local_receiver() -> None:
    received: list[tuple[bytes, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((body, self.headers.get("x-voiceauth-signature", "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = WebhookNotifier(f"http://127.0.0.1:{server.server_port}/hook", b"secret")
        outcome = CallOutcome(call_id="CA9", tenant="t", protocol="twilio", decision="ACCEPT", speech_seconds=3.2)
        outcome.staff = {"score": 91.0}
        hook.submit(outcome)
        hook.close()
    finally:
        server.shutdown()
        server.server_close()
    body, sig = received[0]
    assert sig == sign_webhook(b"secret", body)
    call = json.loads(body)["call"]
    assert call["call_id"] == "CA9" and call["decision"] == "ACCEPT" and "score" not in call


# -- mic client (pyaudio is optional and never needed by the tests) ------------------------------------------------
def test_mic_needs_the_optional_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from ivr.mic import level_bar, run_mic

    monkeypatch.setitem(sys.modules, "pyaudio", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"voiceauth\[mic\]"):
        run_mic("verify", "c", url="ws://127.0.0.1:9", api_key="", seconds=1, out=sys.stderr)
    assert level_bar(np.zeros(320, np.float32)).endswith("-120.0 dBFS")
    assert level_bar(np.full(320, 0.5, np.float32)).count("#") == 27


# -- prompts --------------------------------------------------------------------------------------------------------
def test_prompts_are_spoken_by_espeak_and_cached(tmp_path: Path) -> None:
    import shutil

    from ivr.prompts import PromptLibrary

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the Makefile installs it: apt-get install espeak-ng)")
    lib = PromptLibrary(tmp_path)
    pcm = lib.pcm16("goodbye")
    assert (tmp_path / "goodbye.wav").is_file() and 0.3 < len(pcm) / 2 / 8000 < 3.0
    assert PromptLibrary(tmp_path, espeak=None).pcm16("goodbye") == pcm  # served from the cache


def test_prompts_fall_back_to_a_chime_without_espeak(tmp_path: Path) -> None:
    from ivr.prompts import PromptLibrary

    lib = PromptLibrary(tmp_path, espeak=None)
    assert len(lib.pcm16("verified")) == 2 * int(8000 * 0.15) * 2
    with pytest.raises(KeyError, match="no prompt named"):
        lib.pcm16("nope")
