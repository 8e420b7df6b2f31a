"""G.711 codecs: bit-exact with the ITU reference algorithm (via audioop where present) and libsndfile."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import soundfile as sf

from voiceauth.audio import codecs

ALL_LINEAR = np.arange(-32768, 32768, dtype="<i2")


def _audioop():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip("audioop (the reference) was removed in Python 3.13")
    return audioop


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_encode_and_decode_match_audioop_for_every_value(law: str) -> None:
    audioop = _audioop()
    ref_encode = audioop.lin2ulaw if law == "mulaw" else audioop.lin2alaw
    ref_decode = audioop.ulaw2lin if law == "mulaw" else audioop.alaw2lin
    encode = getattr(codecs, f"{law}_encode")
    decode = getattr(codecs, f"{law}_decode")
    assert encode(ALL_LINEAR / 32768.0) == ref_encode(ALL_LINEAR.tobytes(), 2)
    all_codes = bytes(range(256))
    expected = np.frombuffer(ref_decode(all_codes, 2), dtype="<i2") / 32768.0
    np.testing.assert_array_equal(decode(all_codes), expected.astype(np.float32))


@pytest.mark.parametrize(("law", "subtype"), [("mulaw", "ULAW"), ("alaw", "ALAW")])
def test_decode_matches_libsndfile(law: str, subtype: str) -> None:
    codes = bytes(range(256))
    # a WAV holding all 256 codes, decoded by libsndfile
    buf = io.BytesIO()
    sf.write(buf, np.zeros(256, dtype=np.float32), 8000, format="WAV", subtype=subtype)
    data = bytearray(buf.getvalue())
    data[-256:] = codes
    ref, _ = sf.read(io.BytesIO(bytes(data)), dtype="int16")
    np.testing.assert_array_equal(getattr(codecs, f"{law}_decode")(codes), ref.astype(np.float32) / 32768.0)


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_round_trip_error_is_within_g711_quantisation(law: str) -> None:
    x = np.random.default_rng(0).uniform(-0.9, 0.9, 10_000).astype(np.float32)
    y = getattr(codecs, f"{law}_decode")(getattr(codecs, f"{law}_encode")(x))
    # logarithmic companding: error relative to magnitude stays below 1/16 (4 mantissa bits)
    assert np.all(np.abs(y - x) <= np.abs(x) / 16 + 2e-3)
    assert getattr(codecs, f"{law}_encode")(y) == getattr(codecs, f"{law}_encode")(x)


def test_encoders_clip_and_survive_non_finite() -> None:
    x = np.array([2.0, -2.0, np.nan, np.inf, -np.inf], dtype=np.float32)
    mu = codecs.mulaw_decode(codecs.mulaw_encode(x))
    assert mu[0] == pytest.approx(codecs.MULAW_FULL_SCALE) and mu[1] == pytest.approx(-codecs.MULAW_FULL_SCALE)
    assert mu[2] == 0.0
    assert len(codecs.alaw_encode(x)) == 5


def test_l16_round_trip() -> None:
    x = (np.arange(-32768, 32768, 7) / 32768.0).astype(np.float32)
    np.testing.assert_array_equal(codecs.l16_decode(codecs.l16_encode(x)), x)
