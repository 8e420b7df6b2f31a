"""The front-end pipeline, fed in chunks: resample to 16 kHz, Silero VAD, per-window quality statistics.

:class:`StreamingFrontEnd` takes stream frames (raw ``mulaw``/``alaw``/``l16`` bytes or float samples) and
exposes, at any moment, the speech found so far at 16 kHz, its net duration and the narrowband flag.
:class:`voiceauth.audio.frontend.FrontEnd` decodes whole files and feeds them through the same class, so a
file and the same audio streamed in 20 ms frames give the same result.

Band matching (setting ``audio_band``): ECAPA embeddings of the same speech differ between the telephone
band and wideband (cosine 0.68-0.86 measured on LibriSpeech: the 4-8 kHz band moves the embedding), so
every input is taken to 8 kHz and back to 16 kHz, the path real phone audio takes, and a web upload and a
phone call of one speaker are embedded from the same band (``"telephone"``). The full band is worth keeping
where both sides have it (16 kHz EER 1.25% at full band vs 1.80% in the telephone band,
benchmarks/results/accuracy.md), so the default ``"auto"`` also keeps wideband input's full band
(:meth:`StreamingFrontEnd.speech_wide`, ``Utterance.speech_wide``). ``"wide"`` keeps only the full band.
Telephone-band speech is embedded by ECAPA with its first layers adapted to the channel
(:mod:`voiceauth.embedding.telephone`; ``Utterance.speech_telephone`` says which band ``speech`` is in).

What is embedded (``speech``): not the VAD segments glued together but the speech with its context, from
``embed_edge_ms`` before the first segment to ``embed_edge_ms`` after the last, pauses longer than
``embed_max_pause_ms`` shortened to that (:func:`embedding_ranges`). ECAPA was trained on whole utterances;
VAD-trimmed input raised EER by ~20% relative on every set measured. Net speech is still the VAD's.

VAD runs on the 8 kHz signal when there is one (Silero's 8 kHz network) and on the 16 kHz signal
otherwise; both use 32 ms windows, so window ``k`` is always samples ``[512 k, 512 k + 512)`` at 16 kHz.
Quality statistics are measured on the received audio at 16 kHz (before band matching).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voiceauth.audio.codecs import ALAW_FULL_SCALE, MULAW_FULL_SCALE, alaw_decode, l16_decode, mulaw_decode
from voiceauth.audio.decode import RAW_FORMATS, DecodeLimits, check_rate, normalize_format
from voiceauth.audio.quality import QualityThresholds, assess, clipped_count, high_band_energy, window_powers
from voiceauth.audio.resample import TARGET_RATE, StreamResampler
from voiceauth.audio.types import Quality, Utterance
from voiceauth.audio.vad import VadParams, VadStream, speech_segments
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.errors import AudioLimitExceeded, InvalidSamples, UnsupportedFormat

__all__ = ["FrontEndConfig", "StreamingFrontEnd", "embedding_ranges"]

_WIN16 = 512  # samples per 32 ms window at 16 kHz
# Speech with less than this share of its energy in 5.5-7.5 kHz came through a telephone channel. Measured on
# 42 LibriSpeech utterances: wideband >= 9e-6 (median 3e-3); the same taken to 8 kHz (and mu-law) and back
# to 16 kHz <= 4e-7.
_NARROWBAND_HIGH_BAND = 2e-6


class FrontEndConfig:
    """The front-end part of :class:`Settings`, resolved once."""

    def __init__(self, settings: Settings) -> None:
        self.limits = DecodeLimits(
            max_bytes=settings.max_upload_bytes,
            max_duration_s=settings.max_audio_duration_s,
            max_channels=settings.max_audio_channels,
        )
        self.thresholds = QualityThresholds(
            min_speech_s=settings.min_speech_s,
            min_snr_db=settings.min_snr_db,
            max_clipping_ratio=settings.max_clipping_ratio,
            min_level_dbfs=settings.min_level_dbfs,
        )
        self.band = settings.audio_band
        self.embed_edge = settings.embed_edge_ms * TARGET_RATE // 1000
        self.embed_max_pause = settings.embed_max_pause_ms * TARGET_RATE // 1000
        self.vad = VadParams(
            threshold=settings.vad_threshold,
            min_speech_ms=settings.vad_min_speech_ms,
            min_silence_ms=settings.vad_min_silence_ms,
            speech_pad_ms=settings.vad_speech_pad_ms,
        )


def embedding_ranges(ranges: list[tuple[int, int]], length: int, edge: int, max_pause: int) -> list[tuple[int, int]]:
    """What is embedded, as [start, end) sample ranges: ``ranges`` (speech) widened by ``edge`` samples at the
    outer ends (within ``[0, length)``), pauses between them kept up to ``max_pause`` samples (a longer pause
    keeps its first and last ``max_pause // 2`` samples). Pure."""
    if not ranges:
        return []
    out = [(max(0, ranges[0][0] - edge), ranges[0][1])]
    for a, b in ranges[1:]:
        prev_end = out[-1][1]
        if a - prev_end <= max_pause:
            out[-1] = (out[-1][0], b)
        else:
            half = max_pause // 2
            out[-1] = (out[-1][0], prev_end + half)
            out.append((a - half, b))
    out[-1] = (out[-1][0], min(length, out[-1][1] + edge))
    return [(a, b) for a, b in out if b > a]


class StreamingFrontEnd:
    """Incremental front end for one utterance or call leg. Not thread-safe; one instance per stream.

    ``fmt``: ``"float"`` (``feed`` takes float samples in [-1, 1]) or a raw stream format (``mulaw``,
    ``alaw``, ``l16``; ``feed`` takes bytes, frames may be split anywhere). ``narrowband``: None infers it
    (G.711, a rate <= 8 kHz, or speech with no energy above 5.5 kHz).
    """

    def __init__(
        self,
        settings: Settings | FrontEndConfig,
        *,
        sample_rate: int,
        fmt: str = "float",
        narrowband: bool | None = None,
        full_scale: float | None = None,
        source_format: str = "",
    ) -> None:
        self._cfg = settings if isinstance(settings, FrontEndConfig) else FrontEndConfig(settings)
        self.sample_rate = check_rate(sample_rate)
        self.fmt = "float" if fmt == "float" else normalize_format(fmt)
        if self.fmt not in ("float", *RAW_FORMATS):
            raise UnsupportedFormat(f"a stream carries raw mulaw, alaw or l16 bytes or float samples, not {fmt!r}")
        scale = {"mulaw": MULAW_FULL_SCALE, "alaw": ALAW_FULL_SCALE, "l16": 32767 / 32768}.get(self.fmt, 1.0)
        self._full_scale = full_scale if full_scale is not None else scale
        codec_nb = self.fmt in ("mulaw", "alaw") or self.sample_rate <= 8000
        self._narrowband_given = narrowband if narrowband is not None else (True if codec_nb else None)
        self.source_format = source_format or f"stream {self.fmt} {self.sample_rate} Hz"
        self._max_samples = int(self._cfg.limits.max_duration_s * self.sample_rate)
        telephone = self._cfg.band in ("telephone", "auto")
        # auto + wideband input: the full band is kept too (for speech_wide), from the analysis path
        self._keep_wide = self._cfg.band == "auto" and self.sample_rate > 8000 and self._narrowband_given is not True
        self._wide: list[FloatArray] = []
        self._wide_joined: FloatArray | None = None
        # speech path: native -> (8 kHz when band-matching) -> 16 kHz
        self._to8 = StreamResampler(self.sample_rate, 8000) if telephone and self.sample_rate > 8000 else None
        self._resampler = StreamResampler(8000 if telephone else self.sample_rate, TARGET_RATE)
        # analysis path for quality statistics: native -> 16 kHz (the speech path itself when they agree)
        self._analysis = (
            StreamResampler(self.sample_rate, TARGET_RATE) if telephone and self.sample_rate > 8000 else None
        )
        self._vad = VadStream(8000 if telephone or self.sample_rate == 8000 else TARGET_RATE)
        self._stat_buf = np.zeros(0, dtype=np.float32)
        self._stat_pos = 0  # 16 kHz samples already in the statistics (when they are taken lazily)
        self._carry = b""
        self._n_in = 0
        self._n_clipped = 0
        self._audio: list[FloatArray] = []
        self._audio_len = 0
        self._joined: FloatArray | None = None
        self._probs: list[FloatArray] = []
        self._powers: list[npt.NDArray[np.float64]] = []
        self._high: list[npt.NDArray[np.float64]] = []
        self._total: list[npt.NDArray[np.float64]] = []
        self._finished = False
        self._ranges_cache: tuple[tuple[int, int, bool], list[tuple[int, int]]] | None = None
        self._segments_cache: tuple[tuple[int, bool], list[tuple[int, int]]] | None = None

    # -- input ---------------------------------------------------------------------------------------
    def feed(self, chunk: bytes | bytearray | memoryview | npt.ArrayLike) -> None:
        """Add a chunk: bytes in the stream's raw format, or float samples when ``fmt="float"``."""
        if self._finished:
            raise RuntimeError("StreamingFrontEnd.feed after finish")
        samples = self._decode_chunk(chunk)
        if samples.size == 0:
            return
        if self._n_in + samples.size > self._max_samples:
            raise AudioLimitExceeded(f"the stream is longer than the {self._cfg.limits.max_duration_s:g} s limit")
        if not np.all(np.isfinite(samples)):
            raise InvalidSamples("audio contains NaN or infinite samples; samples must be finite")
        self._n_in += samples.size
        self._n_clipped += clipped_count(samples, self._full_scale)
        self._process(samples, final=False)

    def finish(self) -> Utterance:
        """End of input: flush the resampler and VAD and return the final utterance."""
        if not self._finished:
            self._finished = True
            self._process(np.zeros(0, dtype=np.float32), final=True)
        return self.utterance()

    # -- state so far --------------------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        """Seconds of audio received."""
        return self._n_in / self.sample_rate

    @property
    def net_speech_s(self) -> float:
        """Seconds of speech found so far."""
        return sum(b - a for a, b in self._ranges()) / TARGET_RATE

    @property
    def in_speech(self) -> bool:
        """Whether the latest window is inside an unfinished speech segment."""
        segs = self._segments(final=False)
        return bool(segs) and segs[-1][1] == self._n_windows()

    @property
    def trailing_silence_s(self) -> float:
        """Seconds since the end of the last speech segment (all received audio when there was none)."""
        segs = self._segments(final=self._finished)
        end = segs[-1][1] if segs else 0
        return (self._n_windows() - end) * _WIN16 / TARGET_RATE

    @property
    def narrowband(self) -> bool:
        if self._narrowband_given is not None:
            return self._narrowband_given
        self._catch_up_stats()
        mask = self._speech_mask()
        high, total = self._concat(self._high), self._concat(self._total)
        n = min(mask.size, high.size)
        if n == 0 or not mask[:n].any():
            return False
        return float(high[:n][mask[:n]].sum()) < _NARROWBAND_HIGH_BAND * float(total[:n][mask[:n]].sum())

    def speech(self) -> FloatArray:
        """What is embedded, at 16 kHz in the band ``audio_band`` matches (the telephone band unless ``wide``):
        the speech found so far with its context (:func:`embedding_ranges`); empty when there is no speech."""
        return self._cut(self._audio16())

    @property
    def speech_is_telephone(self) -> bool:
        """Whether :meth:`speech` is telephone band (everything but wideband input with ``audio_band="wide"``)."""
        return not (self._cfg.band == "wide" and self.sample_rate > 8000 and not self.narrowband)

    def speech_wide(self) -> FloatArray | None:
        """The same as :meth:`speech` at full band, for wideband input with ``audio_band="auto"`` (or ``"wide"``,
        where it is ``speech`` itself); None for telephone input or ``audio_band="telephone"``."""
        if self._cfg.band == "wide" and self.sample_rate > 8000 and not self.narrowband:
            return self.speech()
        if not self._keep_wide or self.narrowband:
            return None
        if self._wide_joined is None:
            self._wide_joined = np.concatenate(self._wide) if self._wide else np.zeros(0, dtype=np.float32)
            self._wide = [self._wide_joined]
        return self._cut(self._wide_joined)

    def _cut(self, audio: FloatArray) -> FloatArray:
        cfg = self._cfg
        ranges = embedding_ranges(self._ranges(), min(audio.size, self._audio_len), cfg.embed_edge, cfg.embed_max_pause)
        parts = [audio[a:b] for a, b in ranges]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)

    def speech_span(self) -> FloatArray:
        """16 kHz audio from the first speech onset to the last speech offset so far, pauses in between kept."""
        ranges = self._ranges()
        if not ranges:
            return np.zeros(0, dtype=np.float32)
        return np.ascontiguousarray(self._audio16()[ranges[0][0] : ranges[-1][1]], dtype=np.float32)

    def quality(self) -> Quality:
        self._catch_up_stats()
        mask = self._speech_mask()
        powers = self._concat(self._powers)
        ratio = self._n_clipped / self._n_in if self._n_in else 0.0
        return assess(
            powers,
            mask[: powers.size],
            net_speech_s=self.net_speech_s,
            clipping_ratio=ratio,
            thresholds=self._cfg.thresholds,
        )

    def segments_s(self) -> tuple[tuple[float, float], ...]:
        """Speech segments so far, (start, end) in seconds of the received audio."""
        return tuple((round(a / TARGET_RATE, 3), round(b / TARGET_RATE, 3)) for a, b in self._ranges())

    def utterance(self) -> Utterance:
        """Snapshot of everything so far as an :class:`Utterance` (final after :meth:`finish`)."""
        return Utterance(
            speech=self.speech(),
            speech_wide=self.speech_wide(),
            speech_telephone=self.speech_is_telephone,
            sample_rate=TARGET_RATE,
            duration_s=round(self.duration_s, 4),
            narrowband=self.narrowband,
            quality=self.quality(),
            source_format=self.source_format,
            segments=self.segments_s(),
            source_sample_rate=self.sample_rate,
            span=self.speech_span(),
        )

    # -- internals -----------------------------------------------------------------------------------
    def _decode_chunk(self, chunk: bytes | bytearray | memoryview | npt.ArrayLike) -> FloatArray:
        if self.fmt == "float":
            if isinstance(chunk, bytes | bytearray | memoryview):
                raise UnsupportedFormat("this stream takes float samples; open it with fmt='mulaw', 'alaw' or 'l16'")
            return np.asarray(chunk, dtype=np.float32).reshape(-1)
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise UnsupportedFormat(f"this {self.fmt} stream takes bytes, not {type(chunk).__name__}")
        data = self._carry + bytes(chunk)
        if self.fmt == "l16":
            cut = len(data) - (len(data) & 1)
            self._carry = data[cut:]
            return l16_decode(data[:cut])
        self._carry = b""
        return mulaw_decode(data) if self.fmt == "mulaw" else alaw_decode(data)

    def _process(self, samples: FloatArray, *, final: bool) -> None:
        """Run native samples through band matching, resampling, VAD and statistics."""
        if self._to8 is not None:
            x = self._to8.feed(samples)
            vad_in = np.concatenate([x, self._to8.flush()]) if final else x
        else:
            vad_in = samples
        out16 = self._resampler.feed(vad_in)
        if final:
            out16 = np.concatenate([out16, self._resampler.flush()])
        if self._vad.sample_rate == 8000:
            self._probs.append(self._vad.feed(vad_in))
        else:
            self._probs.append(self._vad.feed(out16))
        if final:
            self._probs.append(self._vad.flush())
        if out16.size:
            self._audio.append(out16)
            self._audio_len += out16.size
            self._joined = None
        if self._analysis is not None:
            ana = self._analysis.feed(samples)
            if final:
                ana = np.concatenate([ana, self._analysis.flush()])
            if self._keep_wide and ana.size:
                self._wide.append(ana)
                self._wide_joined = None
            self._update_stats(ana, final=final)
        # else: the statistics are of the speech path's own 16 kHz audio, taken when first asked for
        # (a stream that only needs the speech, like the streaming verifier, never pays for them)

    def _catch_up_stats(self) -> None:
        if self._analysis is not None:
            return
        audio = self._audio16()
        new, self._stat_pos = audio[self._stat_pos :], audio.size
        self._update_stats(new, final=self._finished)

    def _update_stats(self, analysis: FloatArray, *, final: bool) -> None:
        buf = np.concatenate([self._stat_buf, analysis])
        end = buf.size if final else buf.size - buf.size % _WIN16
        self._stat_buf = buf[end:]
        block = buf[:end]
        if block.size == 0:
            return
        if block.size % _WIN16:
            block = np.concatenate([block, np.zeros(_WIN16 - block.size % _WIN16, dtype=np.float32)])
        windows = block.reshape(-1, _WIN16)
        self._powers.append(window_powers(windows))
        if self._narrowband_given is None:  # only the narrowband inference needs the band energies
            high, total = high_band_energy(windows)
            self._high.append(high)
            self._total.append(total)

    def _audio16(self) -> FloatArray:
        if self._joined is None:
            self._joined = np.concatenate(self._audio) if self._audio else np.zeros(0, dtype=np.float32)
            self._audio = [self._joined]
        return self._joined

    @staticmethod
    def _concat(parts: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
        return np.concatenate(parts) if parts else np.zeros(0)

    def _all_probs(self) -> FloatArray:
        return np.concatenate(self._probs) if self._probs else np.zeros(0, dtype=np.float32)

    def _segments(self, *, final: bool) -> list[tuple[int, int]]:
        """The VAD's speech segments (in windows) of the audio so far, computed once per amount of audio."""
        key = (self._n_windows(), final)
        if self._segments_cache is None or self._segments_cache[0] != key:
            self._segments_cache = (key, list(speech_segments(self._all_probs(), self._cfg.vad, final=final)))
        return self._segments_cache[1]

    def _n_windows(self) -> int:
        return int(sum(p.size for p in self._probs))

    def _ranges(self) -> list[tuple[int, int]]:
        """Padded speech segments as [start, end) sample ranges of the 16 kHz audio received so far."""
        key = (self._n_windows(), self._audio_len, self._finished)
        if self._ranges_cache is not None and self._ranges_cache[0] == key:
            return self._ranges_cache[1]
        segs = self._segments(final=self._finished)
        pad = self._cfg.vad.speech_pad_ms * TARGET_RATE // 1000
        limit = self._audio_len
        ranges: list[tuple[int, int]] = []
        for s, e in segs:
            a, b = max(0, s * _WIN16 - pad), min(limit, e * _WIN16 + pad)
            if b <= a:
                continue
            if ranges and a <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(ranges[-1][1], b))
            else:
                ranges.append((a, b))
        self._ranges_cache = (key, ranges)
        return ranges

    def _speech_mask(self) -> npt.NDArray[np.bool_]:
        self._catch_up_stats()
        n = max(self._n_windows(), sum(p.size for p in self._powers))
        mask = np.zeros(n, dtype=bool)
        for a, b in self._ranges():
            mask[a // _WIN16 : -(-b // _WIN16)] = True
        return mask
