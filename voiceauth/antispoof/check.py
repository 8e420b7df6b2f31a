"""One call for the verification core: is this attempt's audio a suspected spoof (synthetic or replayed)?

:func:`assess` runs the replay check against the speaker's earlier attempt fingerprints (supplied by the caller,
e.g. from the store) and, when a countermeasure is given, the AASIST score against the tenant's threshold. It
returns a :class:`SpoofVerdict` carrying everything to record and audit (score, window scores, replay BER) and the
new fingerprint to remember for this speaker. The decision itself is the caller's: a suspected spoof is the
``SPOOF_SUSPECTED`` state, counted as a failure for lockout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.antispoof.replay import DEFAULT_MAX_BER, Fingerprint, find_replay, fingerprint
from voiceauth.embedding.base import FloatArray

__all__ = ["SpoofVerdict", "assess"]

Reason = Literal["replay", "synthetic"]


@dataclass(frozen=True)
class SpoofVerdict:
    """``suspected``: refuse as SPOOF_SUSPECTED; ``reason``: why (replay wins when both apply);
    ``score``/``windows``: the countermeasure's spoof log-odds (None when not run); ``threshold``: the one applied;
    ``replay_ber``: bit error rate of the matching earlier attempt (None when none matched);
    ``fingerprint``: this attempt's fingerprint, for the caller to remember."""

    suspected: bool
    reason: Reason | None
    score: float | None
    windows: tuple[float, ...]
    threshold: float | None
    replay_ber: float | None
    fingerprint: Fingerprint


def assess(
    samples_16k: FloatArray,
    *,
    countermeasure: Countermeasure | None,
    history: Iterable[tuple[float, Fingerprint]] = (),
    now: float = 0.0,
    retention_s: float = 30 * 86_400.0,
    max_ber: float = DEFAULT_MAX_BER,
    threshold: float | None = None,
    replay_check: bool = True,
) -> SpoofVerdict:
    """Assess one attempt. ``history``: (unix seconds, fingerprint) of this speaker's earlier attempts;
    ``threshold``: the tenant's spoof threshold (default: the countermeasure's)."""
    fp = fingerprint(samples_16k, 16_000)
    match = find_replay(fp, history, now, retention_s, max_ber) if replay_check else None
    score: float | None = None
    windows: tuple[float, ...] = ()
    thr: float | None = None
    synthetic = False
    if countermeasure is not None:
        result = countermeasure.score(samples_16k)
        thr = countermeasure.threshold if threshold is None else float(threshold)
        score, windows = result.score, result.windows
        synthetic = score >= thr
    reason: Reason | None = "replay" if match is not None else ("synthetic" if synthetic else None)
    return SpoofVerdict(
        suspected=reason is not None,
        reason=reason,
        score=score,
        windows=windows,
        threshold=thr,
        replay_ber=match.ber if match is not None else None,
        fingerprint=fp,
    )
