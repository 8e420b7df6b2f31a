"""One call for the verification core: is this attempt's audio a suspected spoof (synthetic or replayed)?

:func:`assess` runs the replay check against the speaker's earlier attempt fingerprints (supplied by the caller,
e.g. from the store) and, when a countermeasure is given, the AASIST score against the tenant's threshold. It
returns a :class:`SpoofVerdict` carrying everything to record and audit (score, window scores, replay BER) and the
new fingerprint to remember for this speaker. The decision itself is the caller's: a suspected spoof is the
``SPOOF_SUSPECTED`` state, counted as a failure for lockout. :func:`outcome` reduces a verdict to the verifier's
:class:`~voiceauth.verification.SpoofOutcome` for a mode (``monitor``: a synthetic verdict is recorded and audited,
never enforced; a replay is always enforced).

The AASIST score may be computed beforehand (``spoof=``), so that the forward pass (hundreds of ms) runs outside
the verification transaction that holds the speaker's row lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from voiceauth.antispoof.countermeasure import Countermeasure, SpoofResult
from voiceauth.antispoof.replay import DEFAULT_MAX_BER, Fingerprint, ReplayPolicy, find_replay, fingerprint
from voiceauth.antispoof.windows import AntiSpoofError
from voiceauth.embedding.base import FloatArray
from voiceauth.verification import SpoofCheck, SpoofOutcome

__all__ = ["MODES", "Mode", "SpoofVerdict", "assess", "check_mode", "make_check", "outcome"]

Reason = Literal["replay", "synthetic"]
Mode = Literal["off", "monitor", "enforce"]
MODES: tuple[Mode, ...] = ("off", "monitor", "enforce")


def check_mode(mode: str) -> Mode:
    """``mode`` as a :data:`Mode`, or an error naming the accepted values."""
    if mode not in MODES:
        raise AntiSpoofError(f"anti-spoofing mode {mode!r} is not supported; use off, monitor or enforce")
    return mode


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
    spoof: SpoofResult | None = None,
    history: Iterable[tuple[float, Fingerprint]] = (),
    now: float = 0.0,
    retention_s: float = 30 * 86_400.0,
    max_ber: float = DEFAULT_MAX_BER,
    threshold: float | None = None,
    replay_check: bool = True,
) -> SpoofVerdict:
    """Assess one attempt. ``spoof``: the AASIST result computed beforehand (else ``countermeasure`` scores now,
    if given); ``history``: (unix seconds, fingerprint) of this speaker's earlier attempts; ``threshold``: the
    tenant's spoof threshold (default: the one the result or countermeasure carries)."""
    fp = fingerprint(samples_16k, 16_000)
    match = find_replay(fp, history, now, retention_s, max_ber) if replay_check else None
    score: float | None = None
    windows: tuple[float, ...] = ()
    thr: float | None = None
    synthetic = False
    result = spoof if spoof is not None else (countermeasure.score(samples_16k) if countermeasure else None)
    if result is not None:
        thr = result.threshold if threshold is None else float(threshold)
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


def outcome(verdict: SpoofVerdict, mode: Mode, *, remember: bool = True) -> SpoofOutcome:
    """The verifier's view of a verdict. A replay is always enforced; a synthetic verdict only in ``enforce`` mode
    (so a tenant threshold that turns a score synthetic later is enforced in that mode too). ``remember``: hand
    the fingerprint over to be stored (False when the replay check is off)."""
    return SpoofOutcome(
        suspected=verdict.suspected,
        enforced=verdict.reason == "replay" or mode == "enforce",
        score=verdict.score,
        reason=verdict.reason,
        fingerprint=verdict.fingerprint.to_bytes() if remember else None,
        threshold=verdict.threshold,
    )


def make_check(
    speech_16k: FloatArray,
    *,
    spoof: SpoofResult | None,
    mode: Mode,
    replay: ReplayPolicy | None,
    now: Callable[[], float],
) -> SpoofCheck | None:
    """The verifier's spoof check of one attempt (None when there is nothing to check): the AASIST result computed
    beforehand (``spoof``, None when not scored) and, with ``replay``, the replay check of ``speech_16k`` (16 kHz VAD
    speech) against the speaker's earlier attempts, which the verifier hands over inside its transaction; the new
    fingerprint is then stored with the attempt. ``now``: unix seconds (the store's clock)."""
    if (spoof is None and replay is None) or speech_16k.size == 0:
        return None

    def check(history: list[tuple[dt.datetime, bytes]]) -> SpoofOutcome:
        verdict = assess(
            speech_16k,
            countermeasure=None,
            spoof=spoof,
            history=[(ts.timestamp(), Fingerprint.from_bytes(b)) for ts, b in history] if replay else [],
            now=now(),
            retention_s=replay.retention_s if replay else 0.0,
            max_ber=replay.max_ber if replay else DEFAULT_MAX_BER,
            replay_check=replay is not None,
        )
        return outcome(verdict, mode, remember=replay is not None)

    return check
