"""Decoding audio bytes (WAV, FLAC, raw G.711 / L16) into one mono float32 channel, within limits.

Pure apart from FLAC, which is handed to libsndfile (``soundfile``) only after its STREAMINFO header has
been checked. WAV is parsed here (RIFF chunks, ``fmt``, ``data``) so that every limit is checked from the
header before a sample is read: a header claiming 4 GB of audio is refused without touching the data.

Accepted:
- WAV: PCM 8 (unsigned), 16, 24, 32-bit; IEEE float 32/64-bit; G.711 mu-law and A-law; plain or
  WAVE_FORMAT_EXTENSIBLE headers.
- FLAC (8/16/24-bit).
- Raw headerless streams: ``mulaw``, ``alaw``, ``l16`` (16-bit little-endian), given a sample rate.
- Sample rates 8000, 16000, 44100, 48000 Hz; 1 to ``max_channels`` interleaved channels, one of which is used.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from voiceauth.audio.codecs import ALAW_FULL_SCALE, MULAW_FULL_SCALE, alaw_decode, l16_decode, mulaw_decode
from voiceauth.embedding.base import FloatArray
from voiceauth.errors import AudioDecodeError, AudioLimitExceeded, InvalidSamples, UnsupportedFormat

__all__ = [
    "ACCEPTED",
    "RAW_FORMATS",
    "SUPPORTED_RATES",
    "DecodeLimits",
    "Decoded",
    "check_rate",
    "decode_bytes",
    "decode_raw",
    "normalize_format",
    "read_limited",
]

SUPPORTED_RATES = (8000, 16000, 44100, 48000)
RAW_FORMATS = ("mulaw", "alaw", "l16")
ACCEPTED = (
    "WAV (PCM 8/16/24/32-bit, float 32/64-bit, G.711 mu-law or A-law), FLAC, or raw mulaw/alaw/l16 with a sample rate"
)
_RATES_TEXT = "8000, 16000, 44100 or 48000 Hz"

_ALIASES = {
    "mulaw": "mulaw", "ulaw": "mulaw", "mu-law": "mulaw", "pcmu": "mulaw", "g711u": "mulaw", "g711_ulaw": "mulaw",
    "alaw": "alaw", "a-law": "alaw", "pcma": "alaw", "g711a": "alaw", "g711_alaw": "alaw",
    "l16": "l16", "s16le": "l16", "pcm16": "l16", "linear16": "l16",
    "wav": "wav", "wave": "wav", "flac": "flac",
}  # fmt: skip

_WAVE_PCM, _WAVE_FLOAT, _WAVE_ALAW, _WAVE_MULAW, _WAVE_EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_KNOWN_WAVE_TAGS = {
    0x0002: "MS ADPCM", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10", 0x0040: "G.721 ADPCM",
    0x0050: "MPEG", 0x0055: "MP3", 0x0064: "G.726 ADPCM", 0x0065: "G.722 ADPCM", 0x0092: "Dolby AC3",
}  # fmt: skip
_MAX_CHUNKS = 1024


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds checked before decoding (from the front-end settings)."""

    max_bytes: int = 20_000_000
    max_duration_s: float = 120.0
    max_channels: int = 8


@dataclass(frozen=True)
class Decoded:
    """One channel of decoded audio at its native rate."""

    samples: FloatArray  # mono float32
    sample_rate: int
    container: str  # "wav", "flac", "raw", "samples"
    codec: str  # "pcm16", "pcm24", "float32", "mulaw", "alaw", ...
    channels: int = 1
    channel: int = 0
    full_scale: float = 1.0  # the largest magnitude this codec can represent (for clipping)

    @property
    def narrowband(self) -> bool:
        """Telephone channel: G.711 codec or a rate of 8 kHz or less."""
        return self.codec in ("mulaw", "alaw") or self.sample_rate <= 8000

    @property
    def duration_s(self) -> float:
        return float(self.samples.size) / float(self.sample_rate)

    def describe(self) -> str:
        layout = "mono" if self.channels == 1 else f"{self.channels} ch (channel {self.channel})"
        return f"{self.container} {self.codec} {self.sample_rate} Hz {layout}"


def normalize_format(fmt: str) -> str:
    """Canonical name of a container or raw format ("ulaw" -> "mulaw"); UnsupportedFormat otherwise."""
    key = fmt.strip().lower()
    if key not in _ALIASES:
        raise UnsupportedFormat(
            f"audio format {fmt!r} is not supported; use wav, flac, or raw mulaw, alaw or l16 (16-bit little-endian)"
        )
    return _ALIASES[key]


def check_rate(sample_rate: int) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise UnsupportedFormat(f"sample rate {sample_rate!r} is not an integer; use {_RATES_TEXT}")
    if int(sample_rate) not in SUPPORTED_RATES:
        raise UnsupportedFormat(f"sample rate {sample_rate} Hz is not supported; use {_RATES_TEXT}")
    return int(sample_rate)


def _check_duration(frames: int, rate: int, limits: DecodeLimits, what: str) -> None:
    seconds = frames / rate
    if seconds > limits.max_duration_s:
        raise AudioLimitExceeded(f"{what} holds {seconds:.1f} s of audio; the limit is {limits.max_duration_s:g} s")


def _check_channels(channels: int, channel: int | None, limits: DecodeLimits) -> int:
    if channels < 1:
        raise UnsupportedFormat(f"audio declares {channels} channels; 1 to {limits.max_channels} are accepted")
    if channels > limits.max_channels:
        raise UnsupportedFormat(f"audio declares {channels} channels; at most {limits.max_channels} are accepted")
    chosen = 0 if channel is None else channel
    if not 0 <= chosen < channels:
        raise UnsupportedFormat(
            f"channel {channel} requested but the audio has {channels} channel(s); use 0 to {channels - 1}"
        )
    return chosen


def _check_size(size: int, limits: DecodeLimits) -> None:
    if size == 0:
        raise AudioDecodeError(f"the audio is empty (0 bytes); send {ACCEPTED}")
    if size > limits.max_bytes:
        raise AudioLimitExceeded(f"the audio is {size} bytes; the limit is {limits.max_bytes} bytes")


def read_limited(path: Path, limits: DecodeLimits) -> bytes:
    """Read a file's bytes after checking its size against the limit (nothing is read when too large)."""
    try:
        size = path.stat().st_size
        _check_size(size, limits)
        with path.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise AudioDecodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    _check_size(len(data), limits)
    return data


def decode_raw(
    data: bytes | bytearray | memoryview,
    fmt: str,
    sample_rate: int,
    *,
    channels: int = 1,
    channel: int | None = None,
    limits: DecodeLimits | None = None,
) -> Decoded:
    """Headerless interleaved ``mulaw``/``alaw``/``l16`` bytes at ``sample_rate``."""
    limits = limits or DecodeLimits()
    name = normalize_format(fmt)
    if name not in RAW_FORMATS:
        raise UnsupportedFormat(f"{fmt!r} is a container, not a raw stream format; use mulaw, alaw or l16")
    rate = check_rate(sample_rate)
    _check_size(len(data), limits)
    chosen = _check_channels(channels, channel, limits)
    width = 2 if name == "l16" else 1
    frame = width * channels
    if len(data) % frame:
        raise AudioDecodeError(
            f"raw {name} data of {len(data)} bytes is not a whole number of {frame}-byte frames "
            f"({channels} channel(s) x {width} byte(s)); the stream is truncated"
        )
    _check_duration(len(data) // frame, rate, limits, f"raw {name} data of {len(data)} bytes")
    buf = np.frombuffer(data, dtype=np.uint8).reshape(-1, frame)[:, chosen * width : (chosen + 1) * width]
    raw = np.ascontiguousarray(buf).tobytes()
    if name == "mulaw":
        samples, full = mulaw_decode(raw), MULAW_FULL_SCALE
    elif name == "alaw":
        samples, full = alaw_decode(raw), ALAW_FULL_SCALE
    else:
        samples, full = l16_decode(raw), 32767 / 32768
    return Decoded(samples, rate, "raw", name, channels, chosen, full)


def decode_bytes(
    data: bytes | bytearray | memoryview,
    *,
    fmt: str | None = None,
    sample_rate: int | None = None,
    channel: int | None = None,
    channels: int = 1,
    limits: DecodeLimits | None = None,
) -> Decoded:
    """Decode a WAV/FLAC file's bytes (``fmt`` None sniffs the container) or a raw stream (``fmt`` + rate)."""
    limits = limits or DecodeLimits()
    _check_size(len(data), limits)
    name = normalize_format(fmt) if fmt is not None else None
    if name in RAW_FORMATS:
        if sample_rate is None:
            raise UnsupportedFormat(f"raw {name} audio needs a sample rate; use {_RATES_TEXT}")
        return decode_raw(data, name, sample_rate, channels=channels, channel=channel, limits=limits)
    head = bytes(data[:12])
    sniffed = _sniff(head)
    if name is not None and sniffed != name:
        raise AudioDecodeError(f"the data is not a {name.upper()} file (its header does not match)")
    if sniffed == "wav":
        return _decode_wav(memoryview(data), channel, limits)
    return _decode_flac(bytes(data), channel, limits)


def _sniff(head: bytes) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    known = {
        b"RIFX": "big-endian WAV (RIFX)", b"RF64": "RF64 WAV", b"OggS": "Ogg (Vorbis/Opus)",
        b"FORM": "AIFF", b"caff": "Core Audio (CAF)", b"#!AM": "AMR", b"\x1aE\xdf\xa3": "WebM/Matroska",
    }  # fmt: skip
    what = known.get(head[:4])
    if what is None and head[4:8] == b"ftyp":
        what = "MP4/M4A"
    if what is None and (head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)):
        what = "MP3"
    if what is not None:
        raise UnsupportedFormat(f"{what} audio is not supported; send {ACCEPTED}")
    if len(head) < 12:
        raise AudioDecodeError(f"only {len(head)} bytes: too short for an audio header; send {ACCEPTED}")
    raise AudioDecodeError(f"unrecognised audio data (neither a WAV nor a FLAC header); send {ACCEPTED}")


def _decode_wav(data: memoryview, channel: int | None, limits: DecodeLimits) -> Decoded:
    pos, fmt_chunk = 12, None
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > len(data):
            what = "no 'data' chunk" if fmt_chunk is not None else "no 'fmt ' chunk"
            raise AudioDecodeError(f"WAV header is truncated or corrupt: {what} found")
        cid = bytes(data[pos : pos + 4])
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + size > len(data):
                raise AudioDecodeError(f"WAV 'fmt ' chunk is truncated or corrupt ({size} bytes)")
            fmt_chunk = bytes(data[body : body + size])
        elif cid == b"data":
            if fmt_chunk is None:
                raise AudioDecodeError("WAV is corrupt: its 'data' chunk comes before the 'fmt ' chunk")
            return _wav_samples(fmt_chunk, data, body, size, channel, limits)
        pos = body + size + (size & 1)
    raise AudioDecodeError(f"WAV has more than {_MAX_CHUNKS} chunks before its audio; it looks corrupt")


def _wav_samples(
    fmt_chunk: bytes, data: memoryview, start: int, size: int, channel: int | None, limits: DecodeLimits
) -> Decoded:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt_chunk, 0)
    if tag == _WAVE_EXTENSIBLE:
        if len(fmt_chunk) < 26:
            raise AudioDecodeError("WAV extensible 'fmt ' chunk is truncated")
        (tag,) = struct.unpack_from("<H", fmt_chunk, 24)
    kinds = {
        (_WAVE_PCM, 8): "pcm8", (_WAVE_PCM, 16): "pcm16", (_WAVE_PCM, 24): "pcm24", (_WAVE_PCM, 32): "pcm32",
        (_WAVE_FLOAT, 32): "float32", (_WAVE_FLOAT, 64): "float64",
        (_WAVE_MULAW, 8): "mulaw", (_WAVE_ALAW, 8): "alaw",
    }  # fmt: skip
    codec = kinds.get((tag, bits))
    if codec is None:
        what = _KNOWN_WAVE_TAGS.get(tag, f"format tag 0x{tag:04x}")
        raise UnsupportedFormat(
            f"WAV codec {what} with {bits}-bit samples is not supported; use PCM 8/16/24/32-bit, "
            "float 32/64-bit, mu-law or A-law"
        )
    chosen = _check_channels(channels, channel, limits)
    check_rate(rate)
    width = bits // 8
    frame = width * channels
    if block_align != frame:
        raise AudioDecodeError(
            f"WAV header is inconsistent: block align {block_align} for {channels} x {bits}-bit samples "
            f"(expected {frame})"
        )
    _check_duration(size // frame, rate, limits, f"the WAV header's data chunk ({size} bytes)")
    available = len(data) - start
    if size > available:
        raise AudioDecodeError(
            f"WAV is truncated: its header declares {size} bytes of audio but only {available} follow"
        )
    frames = size // frame
    if frames == 0:
        raise AudioDecodeError("WAV holds no audio samples (empty 'data' chunk)")
    raw = np.frombuffer(data, dtype=np.uint8, count=frames * frame, offset=start).reshape(frames, frame)
    cols = np.ascontiguousarray(raw[:, chosen * width : (chosen + 1) * width])
    samples, full = _pcm_column(cols, codec)
    if not np.all(np.isfinite(samples)):
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise InvalidSamples(f"WAV float audio contains {bad} NaN or infinite samples; samples must be finite")
    if codec.startswith("float"):
        samples = np.clip(samples, -1.0, 1.0)
    return Decoded(samples.astype(np.float32), rate, "wav", codec, channels, chosen, full)


def _pcm_column(cols: npt.NDArray[np.uint8], codec: str) -> tuple[FloatArray, float]:
    flat = cols.reshape(-1)
    if codec == "mulaw":
        return mulaw_decode(flat.tobytes()), MULAW_FULL_SCALE
    if codec == "alaw":
        return alaw_decode(flat.tobytes()), ALAW_FULL_SCALE
    if codec == "pcm8":
        return ((flat.astype(np.float32) - 128.0) / 128.0).astype(np.float32), 127 / 128
    if codec == "pcm16":
        return (flat.view("<i2").astype(np.float32) / 32768.0).astype(np.float32), 32767 / 32768
    if codec == "pcm24":
        b = cols.astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return (v.astype(np.float64) / float(1 << 23)).astype(np.float32), 1.0 - 2.0**-23
    if codec == "pcm32":
        return (flat.view("<i4").astype(np.float64) / float(1 << 31)).astype(np.float32), 1.0 - 2.0**-31
    if codec == "float32":
        return flat.view("<f4").astype(np.float32), 1.0
    return flat.view("<f8").astype(np.float32), 1.0  # float64 (overflow to inf is caught by the caller)


def _flac_streaminfo(data: bytes) -> tuple[int, int, int, int]:
    """(sample rate, channels, bits per sample, total samples or 0) from the mandatory STREAMINFO block."""
    if len(data) < 42:
        raise AudioDecodeError(f"FLAC header is truncated ({len(data)} bytes)")
    block_type, length = data[4] & 0x7F, int.from_bytes(data[5:8], "big")
    if block_type != 0 or length != 34:
        raise AudioDecodeError("FLAC header is corrupt: it does not start with a STREAMINFO block")
    (packed,) = struct.unpack_from(">Q", data, 18)
    rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    bits = ((packed >> 36) & 0x1F) + 1
    total = packed & ((1 << 36) - 1)
    return int(rate), int(channels), int(bits), int(total)


def _decode_flac(data: bytes, channel: int | None, limits: DecodeLimits) -> Decoded:
    rate, channels, bits, total = _flac_streaminfo(data)
    chosen = _check_channels(channels, channel, limits)
    check_rate(rate)
    if bits not in (8, 16, 24):
        raise UnsupportedFormat(f"FLAC with {bits}-bit samples is not supported; use 8, 16 or 24-bit")
    if total:
        _check_duration(total, rate, limits, "the FLAC header")
    max_frames = int(limits.max_duration_s * rate) + 1
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            if fh.samplerate != rate or fh.channels != channels:
                raise AudioDecodeError("FLAC header is inconsistent with its stream")
            block = fh.read(frames=max_frames, dtype="float32", always_2d=True)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError, OSError) as exc:
        raise AudioDecodeError(f"FLAC data is corrupt or truncated: {exc}") from exc
    got = int(block.shape[0])
    if got >= max_frames:
        _check_duration(got, rate, limits, "the FLAC stream")
    if total and got < total:
        raise AudioDecodeError(f"FLAC is truncated: its header declares {total} samples but {got} decode")
    if got == 0:
        raise AudioDecodeError("FLAC holds no audio samples")
    samples = np.ascontiguousarray(block[:, chosen], dtype=np.float32)
    return Decoded(samples, rate, "flac", f"pcm{bits}", channels, chosen, 1.0 - 2.0 ** (1 - bits))
