"""Every kind of bad audio gets a 4xx problem document with the front end's message, never a 500."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import pytest

from tests.api.conftest import Api, audio_file, sample, wav_bytes

PROBLEM = "application/problem+json"


def _nan_float_wav() -> bytes:
    x = np.linspace(-0.5, 0.5, 8000, dtype=np.float32)
    x[100] = np.nan
    data = x.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 8000 * 4, 4, 32)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + 16 + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + (b"data" + struct.pack("<I", len(data)) + data)
    )


def _mp3_like() -> bytes:
    frame = b"\xff\xfb\x90\x64" + bytes(range(256)) * 2
    return b"ID3\x04\x00\x00\x00\x00\x00\x21" + b"\x00" * 33 + frame * 20


BAD: dict[str, tuple[Callable[[], bytes], int, str]] = {
    # name: (payload, status, problem code)
    "empty": (lambda: b"", 422, "audio-decode-error"),
    "random-bytes": (lambda: b"junk" + np.random.default_rng(1).bytes(20_000), 422, "audio-decode-error"),
    "truncated-header": (lambda: sample("george_a")[:30], 422, "audio-decode-error"),
    "mp3-like": (_mp3_like, 415, "unsupported-audio-format"),
    "nan-float-wav": (_nan_float_wav, 422, "invalid-samples"),
    "silence": (lambda: wav_bytes(np.zeros(32000, dtype=np.float32), 8000), 422, "no-speech"),
    "unsupported-rate": (lambda: wav_bytes(np.zeros(11025, dtype=np.float32), 11025), 415, "unsupported-audio-format"),
}


@pytest.mark.parametrize("kind", ["enrollments", "verifications"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_audio_is_a_4xx_problem(api: Api, case: str, kind: str) -> None:
    api.register("cust-1")
    payload, status, code = BAD[case]
    r = api.client.post(f"/v1/speakers/cust-1/{kind}", files=audio_file(payload()), headers=api.h("acme:telephony"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["type"] == f"urn:voiceauth:problem:{code}" and body["status"] == status
    assert body["detail"] and "Traceback" not in body["detail"]


def test_mp3_message_names_what_is_accepted(api: Api) -> None:
    api.register("cust-1")
    r = api.verify("cust-1", _mp3_like())
    assert "WAV" in r.json()["detail"]


def test_too_large_upload(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_upload_bytes=100_000)
    api.register("cust-1")
    big = wav_bytes(np.zeros(80_000, dtype=np.float32), 8000)  # 160 kB of PCM16
    r = api.enroll("cust-1", big)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    # a declared Content-Length over the request limit is refused before the body is read
    r = api.client.post(
        "/v1/speakers/cust-1/verifications",
        content=b"x" * 300_000,
        headers={**api.h("acme:telephony"), "content-type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 413 and r.json()["code"] == "request-too-large"


def test_missing_audio_field_and_garbage_multipart(api: Api) -> None:
    api.register("cust-1")
    r = api.client.post("/v1/speakers/cust-1/verifications", headers=api.h("acme:telephony"))
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = api.client.post(
        "/v1/speakers/cust-1/verifications",
        content=b"--zz\r\ngarbage",
        headers={**api.h("acme:telephony"), "content-type": "multipart/form-data; boundary=zz"},
    )
    assert 400 <= r.status_code < 500 and r.headers["content-type"] == PROBLEM


def test_raw_mulaw_stream_with_format(api: Api) -> None:
    from tests.api.conftest import SAMPLES
    from voiceauth.audio.codecs import mulaw_encode
    from voiceauth.audio.io import load_audio

    api.register("cust-1")
    a = load_audio(SAMPLES / "george_a.wav")
    raw = mulaw_encode(a.samples)
    ok = api.enroll("cust-1", raw, format="mulaw", sample_rate="8000")
    assert ok.status_code == 200 and ok.json()["accepted"] is True
    no_rate = api.enroll("cust-1", raw, format="mulaw")
    assert 400 <= no_rate.status_code < 500 and no_rate.headers["content-type"] == PROBLEM
