"""Spoofing countermeasures: AASIST (synthetic / converted speech) and a model-free replay check.

``Countermeasure(model_dir).score(samples_16k) -> SpoofResult(score, windows, is_spoof)``: spoof log-odds pooled
over ~4 s windows (higher = more likely spoof). ``fingerprint`` / ``compare`` / ``find_replay`` / ``ReplayGuard``:
the same audio presented twice for a speaker within the retention window is a replay. ``assess``: both in one
verdict for the verification core (``outcome``: reduced for a mode, off / monitor / enforce). ``WindowBatcher`` /
``CallSpoof``: call streams, windows scored as speech arrives on one batching worker.
"""

from __future__ import annotations

from voiceauth.antispoof.check import MODES, Mode, SpoofVerdict, assess, outcome
from voiceauth.antispoof.countermeasure import (
    Countermeasure,
    SpoofResult,
    StreamingCountermeasure,
    create_countermeasure,
    load_aasist,
)
from voiceauth.antispoof.replay import Fingerprint, Match, ReplayGuard, compare, find_replay, fingerprint
from voiceauth.antispoof.stream import CallSpoof, WindowBatcher
from voiceauth.antispoof.windows import WINDOW_SAMPLES, AntiSpoofError

__all__ = [
    "MODES",
    "WINDOW_SAMPLES",
    "AntiSpoofError",
    "CallSpoof",
    "Countermeasure",
    "Fingerprint",
    "Match",
    "ReplayGuard",
    "SpoofResult",
    "SpoofVerdict",
    "assess",
    "StreamingCountermeasure",
    "compare",
    "create_countermeasure",
    "find_replay",
    "fingerprint",
    "load_aasist",
    "Mode",
    "outcome",
    "WindowBatcher",
]
