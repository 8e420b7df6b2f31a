"""The spoofing countermeasure: a network over ~4 s windows of an utterance, pooled into one spoof score.

Two networks are available (``Settings.antispoof_model``): ``telephone`` (default), the LFB-LCNN trained for 8 kHz
telephone speech in this project (:mod:`voiceauth.antispoof.telephone`, calibrated spoof log-likelihood ratio,
~1-2 ms of CPU per second of speech), and ``aasist``, the official AASIST (ASVspoof 2019 LA, 16 kHz studio audio;
it flags most genuine phone callers as spoofs, see benchmarks/results/antispoof.md).

Score convention: ``score`` is the spoof log-odds of the network (AASIST: ``logit[spoof] - logit[bona fide]``;
telephone: the calibrated LLR); higher means more likely synthetic or converted speech. An attempt ``is_spoof``
when ``score >= threshold``. Each window is scored on its own (batched), and the window scores are pooled: for
AASIST ``min`` (the most bona-fide-looking window decides) gave the lowest EER (benchmarks/results/antispoof.md);
the telephone network pools by ``mean``, so one window cannot carry a synthetic call.

The model file is checked against its sha256 pin before it is loaded with ``torch.load(weights_only=True)`` and
``load_state_dict(strict=True)``. Input is 16 kHz mono float32; telephone audio must be upsampled first (the
front end does that). Leading and trailing non-speech is cut first (``trim``, on by default): the ASVspoof 2019 LA
weights learnt that leading silence means bona fide, and half a second of faint noise put before a TTS utterance
otherwise turns it "bona fide" (benchmarks/results/antispoof.md). :class:`StreamingCountermeasure` scores windows
as speech arrives.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from models.fetch import ensure_model, verify_dir
from models.registry import AASIST as AASIST_SPEC
from voiceauth.antispoof.aasist import AASIST, BONAFIDE_INDEX, SPOOF_INDEX
from voiceauth.antispoof.windows import WINDOW_SAMPLES, AntiSpoofError, Pooling, pool_scores, trim_silence, windows
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.errors import ModelError

__all__ = [
    "DEFAULT_THRESHOLD",
    "Countermeasure",
    "SpoofResult",
    "StreamingCountermeasure",
    "create_countermeasure",
    "load_aasist",
]

COUNTERMEASURES = ("telephone", "aasist")

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
DEFAULT_THRESHOLD = 0.0  # AASIST spoof log-odds; the telephone network's calibrated threshold is in its manifest
TELEPHONE_WINDOW = 64_000  # 4 s at 16 kHz: the telephone network's window (and hop) unless configured
WEIGHTS_FILE = "AASIST.pth"


@dataclass(frozen=True)
class SpoofResult:
    """Outcome of one countermeasure pass.

    ``score``: pooled spoof log-odds (higher = more likely spoof); ``windows``: the per-window scores in order;
    ``is_spoof``: ``score >= threshold``; ``threshold``: the threshold applied.
    """

    score: float
    windows: tuple[float, ...]
    is_spoof: bool
    threshold: float = DEFAULT_THRESHOLD


def load_aasist(model_dir: Path, verify: bool = True) -> AASIST:
    """Build AASIST and load the pinned official weights from ``model_dir`` (strict: no missing/unexpected keys)."""
    if verify:
        verify_dir(model_dir, AASIST_SPEC)
    path = model_dir / WEIGHTS_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"cannot read AASIST weights {path}: {exc}") from exc
    net = AASIST()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path} does not match the AASIST architecture: {exc}") from exc
    # channels-last convolutions are ~1.5x faster on CPU for the wide (23 x 21490) feature maps of the encoder
    return net.to(memory_format=torch.channels_last).eval()


class _AasistOdds(torch.nn.Module):
    """AASIST's two logits as one spoof log-odds per window."""

    def __init__(self, net: AASIST) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x).float()
        return logits[:, SPOOF_INDEX] - logits[:, BONAFIDE_INDEX]


class Countermeasure:
    """A spoof detector over windows of an utterance. Thread-safe (one forward pass at a time).

    ``net``: a module mapping (batch, samples) 16 kHz windows to one spoof log-odds each; by default AASIST loaded
    from ``model_dir``. ``name`` says which network it is (for metrics and audit)."""

    def __init__(
        self,
        model_dir: Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        window: int = WINDOW_SAMPLES,
        hop: int | None = None,
        max_windows: int = 8,
        pooling: Pooling = "min",
        batch_size: int = 4,
        trim: bool = True,
        verify: bool = True,
        device: str = "cpu",
        net: torch.nn.Module | None = None,
        name: str = "aasist",
    ) -> None:
        if window < 16_000:
            raise AntiSpoofError(f"window of {window} samples is too short; use at least 16000 (1 s at 16 kHz)")
        self.threshold = float(threshold)
        self.window = int(window)
        self.hop = int(hop) if hop is not None else self.window // 2
        self.max_windows = int(max_windows)
        self.pooling: Pooling = pooling
        self.batch_size = max(1, int(batch_size))
        self.trim = bool(trim)
        self.device = torch.device(device)
        self.name = name
        if net is None:
            if model_dir is None:
                raise AntiSpoofError("the AASIST countermeasure needs model_dir, the folder holding AASIST.pth")
            net = _AasistOdds(load_aasist(model_dir, verify=verify))
        self._net = net.to(self.device).eval()
        self._lock = threading.Lock()
        pool_scores([0.0], pooling)  # validate the pooling name now, not at the first call

    def score_windows(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Spoof log-odds of each row of a (n, samples) matrix of 16 kHz windows."""
        out: list[npt.NDArray[np.float64]] = []
        with self._lock, torch.inference_mode():
            for i in range(0, batch.shape[0], self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(batch[i : i + self.batch_size])).to(self.device)
                odds = self._net(x).float()
                out.append(odds.cpu().numpy().astype(np.float64))
        return np.concatenate(out)

    def score(self, samples_16k: FloatArray) -> SpoofResult:
        """Score an utterance (16 kHz mono float32): window it, score each window, pool."""
        x = trim_silence(samples_16k) if self.trim else samples_16k
        mat = windows(x, self.window, self.hop, self.max_windows)
        per_window = self.score_windows(mat)
        return self.decide(per_window)

    def decide(self, per_window: npt.ArrayLike) -> SpoofResult:
        """Pool window scores and apply the threshold."""
        s = np.asarray(per_window, dtype=np.float64).ravel()
        pooled = pool_scores(s, self.pooling)
        result = SpoofResult(pooled, tuple(float(v) for v in s), pooled >= self.threshold, self.threshold)
        log.debug("antispoof: %d windows, score %.3f, spoof=%s", s.size, pooled, result.is_spoof)
        return result


class StreamingCountermeasure:
    """Scores windows as speech arrives: a window is scored as soon as it is complete (hop apart).

    ``feed`` returns the scores of windows completed by that chunk; ``result`` pools everything seen so far
    (a short stream is tiled into one window, as for uploads). Feed it the front end's speech (VAD segments), not
    raw call audio: a stream is not silence-trimmed. Not thread-safe; one per call.
    """

    def __init__(self, cm: Countermeasure) -> None:
        self._cm = cm
        self._buf = np.zeros(0, dtype=np.float32)
        self._next_start = 0  # absolute sample index of the next window start
        self._offset = 0  # absolute index of _buf[0]
        self._scores: list[float] = []

    @property
    def window_scores(self) -> tuple[float, ...]:
        return tuple(self._scores)

    def feed(self, chunk_16k: FloatArray) -> list[float]:
        x = np.asarray(chunk_16k, dtype=np.float32).ravel()
        self._buf = np.concatenate([self._buf, x])
        ready: list[npt.NDArray[np.float32]] = []
        w, hop = self._cm.window, self._cm.hop
        while self._next_start + w <= self._offset + self._buf.size:
            s = self._next_start - self._offset
            ready.append(self._buf[s : s + w])
            self._next_start += hop
        if not ready:
            return []
        new = [float(v) for v in self._cm.score_windows(np.stack(ready))]
        self._scores.extend(new)
        drop = self._next_start - self._offset
        self._buf = self._buf[drop:].copy()
        self._offset += drop
        return new

    def result(self) -> SpoofResult:
        if self._scores:
            return self._cm.decide(self._scores)
        if self._buf.size == 0:
            raise AntiSpoofError("no audio was fed to the stream; at least one sample is needed")
        return self._cm.score(self._buf)


def create_countermeasure(settings: Settings, device: str = "cpu") -> Countermeasure:
    """The countermeasure configured by ``settings``: ``antispoof_model`` telephone (the shipped, sha256-verified
    ``models/antispoof``, or ``antispoof_model_dir``) or aasist (pinned weights from ``antispoof_model_dir`` or the
    cache). Unset window, hop, pooling and threshold settings take the network's own defaults."""
    if settings.antispoof_model == "telephone":
        from voiceauth.antispoof.telephone import CM_DIR, TelephoneNet, load_shipped

        lcnn, info = load_shipped(settings.antispoof_model_dir or CM_DIR)
        window = settings.antispoof_window_samples or TELEPHONE_WINDOW
        return Countermeasure(
            threshold=info.threshold if settings.antispoof_threshold is None else settings.antispoof_threshold,
            window=window,
            hop=settings.antispoof_hop_samples or window,
            max_windows=settings.antispoof_max_windows or 4,
            pooling=settings.antispoof_pooling or "mean",
            trim=settings.antispoof_trim_silence,
            device=device,
            net=TelephoneNet(lcnn, info.scale, info.offset),
            name=f"telephone-lcnn-{info.digest[:8]}",
        )
    if settings.antispoof_model != "aasist":
        raise AntiSpoofError(
            f"countermeasure {settings.antispoof_model!r} is not supported; use {' or '.join(COUNTERMEASURES)}"
        )
    model_dir = settings.antispoof_model_dir or ensure_model(settings, AASIST_SPEC)
    return Countermeasure(
        model_dir,
        threshold=DEFAULT_THRESHOLD if settings.antispoof_threshold is None else settings.antispoof_threshold,
        window=settings.antispoof_window_samples or WINDOW_SAMPLES,
        hop=settings.antispoof_hop_samples,
        max_windows=settings.antispoof_max_windows or 8,
        pooling=settings.antispoof_pooling or "min",
        trim=settings.antispoof_trim_silence,
        device=device,
    )
