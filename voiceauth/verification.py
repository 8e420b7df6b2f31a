"""1:1 verification of a claimed speaker: decision states, lockout (NIST SP 800-63B) and the attempt record.

The decision order is pure (:func:`precheck`, :meth:`LockoutPolicy.after_failure`); :class:`Verifier` applies it
inside one store transaction, so the attempt, the lockout counter, the voiceprint's last use and the audit event
are written together. Lockout counts consecutive failures (REJECT, SPOOF_SUSPECTED, CHALLENGE_FAILED) of a
claimed identity across calls: after ``failures`` (5) the identity is LOCKED_OUT for ``base_s`` (30 s), doubling
with each further failure; at ``disable_failures`` voice is disabled until security staff re-enable it.

Two bands (:func:`scoring_band`): a probe with a full-band embedding (wideband audio) is scored against the
voiceprint's full band when the speaker has one (``narrowband=False``: both full band); every other probe is scored
in the telephone band (``narrowband=True``: both telephone band, whatever the source rate). The watchlist is always
searched in the telephone band. Which band was scored is recorded in the audit event (``band``), never the score
itself toward telephony clients.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.embedding.space import RELEASED_SPACE
from voiceauth.liveness import store as live
from voiceauth.scoring.base import Scorer
from voiceauth.store.models import Lockout, Speaker, SpeakerStatus, VerificationAttempt
from voiceauth.store.repo import Store, StoredVoiceprint, StoreTx
from voiceauth.watchlist import WatchlistHit, resolve_threshold, search_watchlist

__all__ = [
    "ChallengeAnswer",
    "Decision",
    "FULL_BAND",
    "SPOOF_THRESHOLD",
    "TELEPHONE_BAND",
    "LockoutPolicy",
    "SpoofCheck",
    "SpoofOutcome",
    "VerificationPolicy",
    "VerificationResult",
    "Verifier",
    "precheck",
    "scoring_band",
]

log = logging.getLogger(__name__)


class Decision(StrEnum):
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    NOT_ENOUGH_SPEECH = "NOT_ENOUGH_SPEECH"
    NOT_ENROLLED = "NOT_ENROLLED"
    OPTED_OUT = "OPTED_OUT"
    EXPIRED = "EXPIRED"
    LOCKED_OUT = "LOCKED_OUT"
    SPOOF_SUSPECTED = "SPOOF_SUSPECTED"  # a failure like REJECT (counts toward lockout)
    CHALLENGE_FAILED = "CHALLENGE_FAILED"  # the liveness digits were wrong or missing (counts toward lockout)


@dataclass(frozen=True)
class ChallengeAnswer:
    """A verification that answers a liveness challenge (``voiceauth.liveness``): its id and the digits heard."""

    challenge_id: str
    heard: str  # what the recogniser heard ("" for nothing); audited for security staff, never shown to telephony


@dataclass(frozen=True)
class SpoofOutcome:
    """What the anti-spoofing check said about a probe (``antispoof.check`` verdict, reduced)."""

    suspected: bool
    enforced: bool  # False in monitor mode: scored and audited, decision unchanged
    score: float | None = None
    reason: str | None = None  # "replay" | "synthetic"
    fingerprint: bytes | None = None  # ``replay.Fingerprint.to_bytes()``, stored on every attempt
    threshold: float | None = None  # spoof log-odds threshold ``score`` was judged at (None: no AASIST score)

    def at_threshold(self, threshold: float) -> SpoofOutcome:
        """The same outcome with the AASIST score judged at ``threshold`` (a tenant's own); a replay stays one."""
        if self.score is None or self.reason == "replay":
            return self
        synthetic = self.score >= threshold
        return replace(self, suspected=synthetic, reason="synthetic" if synthetic else None, threshold=threshold)


#: name of a tenant's spoof log-odds threshold in the ``thresholds`` table (never an operating point)
SPOOF_THRESHOLD = "spoof"

#: runs inside the verification transaction, given the speaker's recent fingerprints ``[(created_at, bytes)]``
SpoofCheck = Callable[[list[tuple[dt.datetime, bytes]]], SpoofOutcome]


@dataclass(frozen=True)
class LockoutPolicy:
    failures: int = 5
    base_s: float = 30.0
    disable_failures: int = 20

    def after_failure(self, consecutive_failures: int, now: dt.datetime) -> tuple[dt.datetime | None, bool]:
        """For the failure count *including* the one just made -> (locked until, disable voice)."""
        if consecutive_failures >= self.disable_failures:
            return None, True
        if consecutive_failures < self.failures:
            return None, False
        doublings = consecutive_failures - self.failures
        return now + dt.timedelta(seconds=self.base_s * 2.0**doublings), False


@dataclass(frozen=True)
class VerificationPolicy:
    min_speech_s: float = 3.0
    operating_point: str = "high_security"
    watchlist_operating_point: str = "high_security"
    adapt: bool = False
    adapt_weight: float = 0.1
    retention: dt.timedelta = dt.timedelta(days=3 * 365)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    challenge_substitutions: int = 0  # digits of a challenge answer that may be substituted (0 or 1)
    challenge_min_speech_s: float = 2.5  # net speech a challenge answer needs (a spoken digit string is short)

    def min_speech_for(self, *, challenge: bool) -> float:
        """Net speech a decision needs: ``challenge_min_speech_s`` for an answer to a liveness challenge."""
        return self.challenge_min_speech_s if challenge else self.min_speech_s

    @classmethod
    def from_settings(cls, s: Settings) -> VerificationPolicy:
        return cls(
            min_speech_s=s.verify_min_speech_s,
            operating_point=s.verify_operating_point,
            watchlist_operating_point=s.watchlist_operating_point,
            adapt=s.adapt_voiceprint,
            adapt_weight=s.adapt_weight,
            retention=dt.timedelta(days=s.retention_days),
            lockout=LockoutPolicy(s.lockout_failures, s.lockout_base_s, s.lockout_disable_failures),
            challenge_substitutions=1 if s.challenge_allow_substitution else 0,
            challenge_min_speech_s=s.challenge_min_speech_s,
        )


@dataclass(frozen=True)
class VerificationResult:
    decision: Decision
    score: float | None = None  # calibrated 0-100 (security staff only)
    raw_score: float | None = None  # plain cosine (security staff only)
    normalized: float | None = None
    threshold: float | None = None
    operating_point: str = ""
    net_speech_s: float = 0.0
    watchlist_hit: WatchlistHit | None = None
    locked_until: dt.datetime | None = None
    attempt_id: int | None = None
    spoof_score: float | None = None  # AASIST spoof log-odds (security staff only)
    spoof_threshold: float | None = None
    spoof_reason: str | None = None  # "replay" | "synthetic" when suspected (also in monitor mode)
    band: str | None = None  # "full" | "telephone": the band scored (None: not scored)
    challenge_result: str | None = None  # passed | wrong-digits | no-digits (None: no challenge); staff only


#: the bands a probe may be scored in
FULL_BAND, TELEPHONE_BAND = "full", "telephone"


def scoring_band(*, probe_wide: bool, voiceprint_wide: bool) -> str:
    """The band a probe is scored in: full band only when both the probe and the voiceprint have one."""
    return FULL_BAND if probe_wide and voiceprint_wide else TELEPHONE_BAND


def precheck(
    *,
    registered: bool,
    status: str,
    voice_disabled: bool,
    locked_until: dt.datetime | None,
    has_voiceprint: bool,
    expires_at: dt.datetime | None,
    net_speech_s: float,
    min_speech_s: float,
    now: dt.datetime,
    voiceprint_current: bool = True,
) -> Decision | None:
    """The decision reached before any scoring, or None when the probe must be scored.

    ``voiceprint_current`` False: the voiceprint was made by another embedding network than the running one (see
    :mod:`voiceauth.embedding.space`), so no score against it means anything; it is ``EXPIRED`` until re-enrolled."""
    if not registered:
        return Decision.NOT_ENROLLED
    if status == SpeakerStatus.OPTED_OUT:
        return Decision.OPTED_OUT
    if voice_disabled or (locked_until is not None and now < locked_until):
        return Decision.LOCKED_OUT
    if status == SpeakerStatus.EXPIRED or (has_voiceprint and expires_at is not None and now >= expires_at):
        return Decision.EXPIRED
    if has_voiceprint and not voiceprint_current:
        return Decision.EXPIRED
    if not has_voiceprint:
        return Decision.NOT_ENROLLED
    if net_speech_s < min_speech_s:
        return Decision.NOT_ENOUGH_SPEECH
    return None


class Verifier:
    """Decides ACCEPT / REJECT / ... for a probe embedding against a claimed speaker's voiceprint."""

    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        operating_points: Mapping[str, float],
        policy: VerificationPolicy | None = None,
        *,
        space: str = RELEASED_SPACE,
    ) -> None:
        self.store = store
        self.scorer = scorer
        self.operating_points = dict(operating_points)
        self.policy = policy or VerificationPolicy()
        self.space = space  # the running engine's telephone-band network

    def verify(
        self,
        tenant: str,
        external_ref: str,
        probe: FloatArray | None,
        *,
        net_speech_s: float,
        narrowband: bool,
        probe_wide: FloatArray | None = None,
        call_id: str = "",
        actor: str = "",
        spoof_check: SpoofCheck | None = None,
        replay_retention_s: float = 30 * 86400.0,
        challenge: ChallengeAnswer | None = None,
    ) -> VerificationResult:
        """``probe`` (the telephone-band embedding) may be None when the audio had too little speech to embed;
        ``probe_wide`` is the full-band embedding of wideband audio (None for phone audio). ``narrowband`` is the
        source channel, kept with the attempt.

        ``challenge``: the attempt answers a liveness challenge, claimed here (single use; an unknown, used or
        expired one raises :class:`~voiceauth.errors.ChallengeError` and nothing is written). Only a voice match
        whose heard digits answer it is ACCEPT; wrong or missing digits are CHALLENGE_FAILED (a failure toward
        lockout), for a claimed reference that is not enrolled too, so the answer does not reveal enrolment."""
        p = self.policy
        min_speech_s = p.min_speech_for(challenge=challenge is not None)
        with self.store.transaction() as tx:
            now = tx.clock()
            t = tx.tenant(tenant)
            overrides = tx.thresholds(t.id)
            op_name = t.operating_point or p.operating_point
            threshold = resolve_threshold(op_name, self.operating_points, overrides)
            spk = tx.speaker(t.id, external_ref, lock=True)
            claimed = None
            if challenge is not None:
                claimed = live.use_challenge(tx, t.id, external_ref, challenge.challenge_id)
            vp = tx.voiceprint(spk) if spk is not None else None
            lock = tx.lockout(spk) if spk is not None else None
            stale = vp is not None and vp.space != self.space  # another network's voiceprint (embedding.space)
            decision = precheck(
                registered=spk is not None,
                status=spk.status if spk is not None else "",
                voice_disabled=spk.voice_disabled if spk is not None else False,
                locked_until=lock.locked_until if lock is not None else None,
                has_voiceprint=vp is not None,
                expires_at=vp.expires_at if vp is not None else None,
                net_speech_s=net_speech_s if probe is not None else 0.0,
                min_speech_s=min_speech_s,
                now=now,
                voiceprint_current=not stale,
            )
            hit = None
            if probe is not None and net_speech_s >= min_speech_s:
                wl_threshold = resolve_threshold(p.watchlist_operating_point, self.operating_points, overrides)
                hit = search_watchlist(
                    self.scorer,
                    tx.watchlist(t.id, space=self.space),
                    probe,
                    threshold=wl_threshold,
                    narrowband=True,  # watchlist entries and ``probe`` are telephone band
                    probe_speech_s=net_speech_s,
                )
            score = None
            band = None
            locked_until = lock.locked_until if lock is not None and decision == Decision.LOCKED_OUT else None
            spoof = None
            if decision is None and spoof_check is not None and spk is not None:
                spoof = spoof_check(tx.replay_history(spk, retention_s=replay_retention_s))
                if SPOOF_THRESHOLD in overrides:
                    spoof = spoof.at_threshold(overrides[SPOOF_THRESHOLD])
                if spoof.fingerprint is not None:
                    tx.add_replay_fingerprint(spk, spoof.fingerprint)
            challenge_result = None
            if claimed is not None and challenge is not None:
                if not challenge.heard:
                    challenge_result = live.NO_DIGITS
                elif claimed.answered_by(tx, challenge.heard, substitutions=p.challenge_substitutions):
                    challenge_result = live.PASSED
                else:
                    challenge_result = live.WRONG_DIGITS
            challenge_failed = challenge_result is not None and challenge_result != live.PASSED
            if decision == Decision.NOT_ENROLLED and challenge_failed and probe is not None:
                if net_speech_s >= min_speech_s:  # as an enrolled caller with wrong digits
                    decision = Decision.CHALLENGE_FAILED
            if decision is None:
                assert spk is not None and vp is not None and lock is not None and probe is not None
                band = scoring_band(probe_wide=probe_wide is not None, voiceprint_wide=vp.embedding_wide is not None)
                if band == FULL_BAND:
                    assert vp.embedding_wide is not None and probe_wide is not None
                    score = self.scorer.score(
                        vp.embedding_wide, probe_wide, narrowband=False, probe_speech_s=net_speech_s
                    )
                else:
                    score = self.scorer.score(vp.embedding, probe, narrowband=True, probe_speech_s=net_speech_s)
                if spoof is not None and spoof.suspected and spoof.enforced:
                    decision = Decision.SPOOF_SUSPECTED
                    self._fail(tx, spk, lock, now)
                elif challenge_failed:
                    decision = Decision.CHALLENGE_FAILED
                    self._fail(tx, spk, lock, now)
                elif score.calibrated >= threshold:
                    decision = Decision.ACCEPT
                    lock.consecutive_failures, lock.locked_until, lock.updated_at = 0, None, now
                    tx.touch_voiceprint(spk, retention=p.retention)
                    if p.adapt:
                        self._adapt(tx, spk, probe, probe_wide, vp)
                else:
                    decision = Decision.REJECT
                    self._fail(tx, spk, lock, now)
            attempt = VerificationAttempt(
                tenant_id=t.id,
                speaker_id=spk.id if spk is not None else None,
                decision=decision.value,
                raw_cosine=score.raw_cosine if score else None,
                normalized=score.normalized if score else None,
                calibrated=score.calibrated if score else None,
                threshold=threshold if score else None,
                operating_point=op_name,
                net_speech_s=net_speech_s,
                narrowband=narrowband,
                watchlist_entry_id=hit.entry_id if hit else None,
                call_id=call_id,
                created_at=now,
                spoof_score=spoof.score if spoof is not None else None,
                spoof_reason=(spoof.reason if spoof is not None and spoof.suspected else None),
            )
            tx.session.add(attempt)
            tx.session.flush()
            details: dict[str, Any] = {"attempt": attempt.id, "decision": decision.value, "call_id": call_id}
            if band is not None:
                details["band"] = band
            if stale and decision == Decision.EXPIRED:  # security staff see why: re-enrolment is needed
                details["reason"] = "voiceprint-from-another-embedding-network"
            if hit is not None:
                details["watchlist_entry"] = hit.entry_id
            if claimed is not None and challenge is not None:  # security staff only: what the caller said
                details["challenge"] = claimed.challenge_id
                details["challenge_result"] = challenge_result
                details["challenge_heard"] = challenge.heard
                live.record_result(tx, claimed.challenge_id, challenge_result or live.NOT_SCORED, attempt.id)
            if spoof is not None:  # the audit is security-only; telephony responses carry the decision alone
                details["spoof_suspected"] = spoof.suspected
                details["spoof_enforced"] = spoof.enforced
                if spoof.score is not None:
                    details["spoof_score"] = round(float(spoof.score), 4)
                if spoof.threshold is not None:
                    details["spoof_threshold"] = spoof.threshold
                if spoof.reason is not None and spoof.suspected:
                    details["spoof_reason"] = spoof.reason
            if spk is not None:
                tx.audit("verify", actor=actor, speaker=spk, outcome=decision.value, details=details)
            else:
                tx.audit(
                    "verify",
                    actor=actor,
                    tenant_id=t.id,
                    subject=tx.pseudonym(t.id, external_ref),
                    outcome=decision.value,
                    details=details,
                )
            log.info(
                "verify call=%s decision=%s band=%s watchlist=%s",
                call_id or "-",
                decision.value,
                band or "-",
                hit is not None,
            )
            return VerificationResult(
                decision=decision,
                score=score.calibrated if score else None,
                raw_score=score.raw_cosine if score else None,
                normalized=score.normalized if score else None,
                threshold=threshold if score else None,
                operating_point=op_name,
                net_speech_s=net_speech_s,
                watchlist_hit=hit,
                locked_until=locked_until,
                attempt_id=attempt.id,
                spoof_score=spoof.score if spoof is not None else None,
                spoof_threshold=spoof.threshold if spoof is not None else None,
                spoof_reason=spoof.reason if spoof is not None and spoof.suspected else None,
                band=band,
                challenge_result=challenge_result,
            )

    def record_spoof(self, tenant: str, attempt_id: int, spoof: SpoofOutcome, *, actor: str = "antispoof") -> None:
        """A monitor-mode spoof score that arrived after its attempt was decided (streams): judged at the tenant's
        spoof threshold, put on the attempt and audited (``verify.spoof``). Never changes the decision."""
        with self.store.transaction() as tx:
            t = tx.tenant(tenant)
            thresholds = tx.thresholds(t.id)
            if SPOOF_THRESHOLD in thresholds:
                spoof = spoof.at_threshold(thresholds[SPOOF_THRESHOLD])
            attempt = tx.session.get(VerificationAttempt, attempt_id)
            if attempt is None or attempt.tenant_id != t.id:
                log.warning("antispoof: attempt %s of tenant %s is gone; late spoof score dropped", attempt_id, tenant)
                return
            attempt.spoof_score = spoof.score
            attempt.spoof_reason = spoof.reason if spoof.suspected else None
            details: dict[str, Any] = {"attempt": attempt_id, "call_id": attempt.call_id}
            details |= {"spoof_suspected": spoof.suspected, "spoof_enforced": False}
            if spoof.score is not None:
                details["spoof_score"] = round(float(spoof.score), 4)
            if spoof.threshold is not None:
                details["spoof_threshold"] = spoof.threshold
            if spoof.suspected and spoof.reason is not None:
                details["spoof_reason"] = spoof.reason
            spk = tx.session.get(Speaker, attempt.speaker_id) if attempt.speaker_id is not None else None
            if spk is not None:
                tx.audit("verify.spoof", actor=actor, speaker=spk, outcome=attempt.decision, details=details)
            else:
                tx.audit("verify.spoof", actor=actor, tenant_id=t.id, outcome=attempt.decision, details=details)

    def _fail(self, tx: StoreTx, spk: Speaker, lock: Lockout, now: dt.datetime) -> None:
        """One more consecutive failure (REJECT, SPOOF_SUSPECTED or CHALLENGE_FAILED): lockout and, at the
        limit, voice disabled."""
        lock.consecutive_failures += 1
        lock.updated_at = now
        until, disable = self.policy.lockout.after_failure(lock.consecutive_failures, now)
        lock.locked_until = until
        if disable:
            tx.set_voice_disabled(spk, True, actor="lockout")

    def _adapt(
        self, tx: StoreTx, spk: Speaker, probe: FloatArray, probe_wide: FloatArray | None, vp: StoredVoiceprint
    ) -> None:
        """Move each band of the voiceprint toward the accepted probe's embedding of the same band; a band the
        probe lacks (the full band of phone audio) is kept as it was. No full band is created by adaptation."""
        w = self.policy.adapt_weight
        wide = vp.embedding_wide
        if wide is not None and probe_wide is not None:
            wide = _mix(wide, probe_wide, w)
        tx.save_voiceprint(
            spk,
            _mix(vp.embedding, probe, w),
            net_speech_s=vp.net_speech_s,
            n_utterances=vp.n_utterances,
            narrowband=vp.narrowband,
            retention=self.policy.retention,
            embedding_wide=wide,
            space=vp.space,  # only a current voiceprint is ever accepted, so this is self.space
        )


def _mix(current: FloatArray, probe: FloatArray, weight: float) -> FloatArray:
    mixed = (1.0 - weight) * current / np.linalg.norm(current) + weight * probe / np.linalg.norm(probe)
    return (mixed / np.linalg.norm(mixed)).astype(np.float32)
