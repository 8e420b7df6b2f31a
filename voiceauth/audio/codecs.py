"""G.711 (ITU-T, 1972) mu-law and A-law codecs and 16-bit linear PCM, with lookup tables (no ``audioop``).

Decoding maps each 8-bit code through a 256-entry float32 table; encoding maps each sample, rounded to
16-bit linear, through a 65,536-entry code table. The tables are built once at import from the reference
algorithm of the ITU-T G.711 software tools (Sun Microsystems' public-domain ``g711.c``), so both
directions are bit-exact with that implementation (and with Python's former ``audioop``).

Float samples are in [-1, 1): 16-bit value / 32768. G.711's largest magnitudes decode to 32124/32768
(mu-law) and 32256/32768 (A-law): :data:`MULAW_FULL_SCALE` and :data:`ALAW_FULL_SCALE`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voiceauth.embedding.base import FloatArray

__all__ = [
    "ALAW_FULL_SCALE",
    "MULAW_FULL_SCALE",
    "alaw_decode",
    "alaw_encode",
    "l16_decode",
    "l16_encode",
    "mulaw_decode",
    "mulaw_encode",
]

_BIAS = 0x84
_MULAW_CLIP = 8159  # 14-bit magnitude limit before biasing


def _float_to_int16(samples: npt.ArrayLike) -> npt.NDArray[np.int16]:
    x = np.asarray(samples, dtype=np.float64)
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def _mulaw_code_to_linear(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    u = ~codes & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS)


def _alaw_code_to_linear(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    a = codes ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t)


def _segment(value: npt.NDArray[np.int64], ends: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """Index of the first segment end >= value (8 when above the last)."""
    return np.searchsorted(np.asarray(ends), value, side="left").astype(np.int64)


def _linear_to_mulaw(pcm16: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    v = pcm16 >> 2  # 14-bit
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), _MULAW_CLIP) + (_BIAS >> 2)
    seg = _segment(v, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    uval = (seg << 4) | ((v >> (seg + 1)) & 0x0F)
    return np.where(seg >= 8, 0x7F ^ mask, uval ^ mask) & 0xFF


def _linear_to_alaw(pcm16: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    v = pcm16 >> 3  # 13-bit
    mask = np.where(v >= 0, 0xD5, 0x55)
    v = np.where(v >= 0, v, -v - 1)
    seg = _segment(v, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    shift = np.where(seg < 2, 1, seg)
    aval = (seg << 4) | ((v >> shift) & 0x0F)
    return np.where(seg >= 8, 0x7F ^ mask, aval ^ mask) & 0xFF


_CODES = np.arange(256, dtype=np.int64)
_LINEAR = np.arange(-32768, 32768, dtype=np.int64)

#: code -> float sample
_MULAW_DECODE: FloatArray = (_mulaw_code_to_linear(_CODES) / 32768.0).astype(np.float32)
_ALAW_DECODE: FloatArray = (_alaw_code_to_linear(_CODES) / 32768.0).astype(np.float32)
#: (int16 sample + 32768) -> code
_MULAW_ENCODE = _linear_to_mulaw(_LINEAR).astype(np.uint8)
_ALAW_ENCODE = _linear_to_alaw(_LINEAR).astype(np.uint8)

MULAW_FULL_SCALE = float(_MULAW_DECODE.max())  # 32124 / 32768
ALAW_FULL_SCALE = float(_ALAW_DECODE.max())  # 32256 / 32768


def _codes(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def mulaw_decode(data: bytes | bytearray | memoryview) -> FloatArray:
    """G.711 mu-law bytes (one sample per byte) -> float32 samples."""
    return _MULAW_DECODE[_codes(data)]


def alaw_decode(data: bytes | bytearray | memoryview) -> FloatArray:
    """G.711 A-law bytes (one sample per byte) -> float32 samples."""
    return _ALAW_DECODE[_codes(data)]


def mulaw_encode(samples: npt.ArrayLike) -> bytes:
    """Float samples in [-1, 1] (clipped beyond) -> G.711 mu-law bytes."""
    return _MULAW_ENCODE[_float_to_int16(samples).astype(np.int64) + 32768].tobytes()


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    """Float samples in [-1, 1] (clipped beyond) -> G.711 A-law bytes."""
    return _ALAW_ENCODE[_float_to_int16(samples).astype(np.int64) + 32768].tobytes()


def l16_decode(data: bytes | bytearray | memoryview) -> FloatArray:
    """16-bit little-endian signed PCM (an even number of bytes) -> float32 samples."""
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def l16_encode(samples: npt.ArrayLike) -> bytes:
    """Float samples in [-1, 1] (clipped beyond) -> 16-bit little-endian signed PCM."""
    return _float_to_int16(samples).astype("<i2").tobytes()
