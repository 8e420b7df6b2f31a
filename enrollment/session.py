"""Enrolment of a speaker, one utterance at a time (text-independent).

Each call is one store transaction: the consent check, the utterance row, the voiceprint it changes and the audit
event commit together, so a failure between writes leaves the previous state untouched. An utterance is refused
with feedback codes when its quality is not good enough (the front end's codes, or ``TOO_SHORT``) or when it
does not match what is already enrolled (``SPEAKER_MISMATCH``: enrolment poisoning). ``replace=True`` starts a
re-enrolment: the new utterance replaces everything enrolled before.

Two bands: every utterance has a telephone-band embedding (``Utterance.speech``), from which the voiceprint every
probe can be scored against is built, and all checks (quality, poisoning, watchlist, progress) use it. Wideband
audio also gives a full-band embedding (``Utterance.speech_wide``); once the accepted utterances that have one hold
the policy's minimum speech, their mean is kept as a full-band voiceprint, for full-band probes only.

Telephone-band embeddings record the network that made them (``space``, see :mod:`voiceauth.embedding.space`).
Utterances enrolled by another network than the running one cannot be compared with new ones: the next accepted
utterance starts the enrolment over (audited as ``restarted: embedding-network-changed``), and until then they do
not count toward progress.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from enrollment.policy import (
    EnrollmentPolicy,
    combine_embeddings,
    full_band_voiceprint,
    progress_percent,
    screen_quality,
)
from voiceauth.audio.types import Quality
from voiceauth.embedding.base import FloatArray
from voiceauth.embedding.space import RELEASED_SPACE, row_space
from voiceauth.errors import ConsentRequired
from voiceauth.scoring.base import Scorer
from voiceauth.store.models import Speaker, SpeakerStatus
from voiceauth.store.repo import Store, StoreTx
from voiceauth.watchlist import WatchlistHit, resolve_threshold, search_watchlist

__all__ = ["Enroller", "EnrollmentResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnrollmentResult:
    accepted: bool  # this utterance was added
    feedback: tuple[str, ...]  # ("OK",) when accepted, else why it was refused
    progress: float  # 0-100 toward the net-speech target
    enrolled: bool  # a usable voiceprint exists
    net_speech_s: float  # accepted net speech so far
    utterances: int  # accepted utterances so far
    consistency_score: float | None = None  # calibrated score against what was enrolled before
    watchlist_hit: WatchlistHit | None = None


class Enroller:
    def __init__(
        self,
        store: Store,
        scorer: Scorer,
        operating_points: Mapping[str, float],
        policy: EnrollmentPolicy | None = None,
        *,
        space: str = RELEASED_SPACE,
    ) -> None:
        self.store = store
        self.scorer = scorer
        self.operating_points = dict(operating_points)
        self.policy = policy or EnrollmentPolicy()
        self.space = space  # the running engine's telephone-band network

    def register(
        self, tenant: str, external_ref: str, *, consent_method: str, consent_text_version: str, actor: str
    ) -> int:
        """Create the speaker (and the tenant if new) with its consent record; returns the speaker id."""
        with self.store.transaction() as tx:
            t = tx.get_or_create_tenant(tenant, actor=actor)
            spk = tx.create_speaker(t.id, external_ref, actor=actor)
            tx.record_consent(spk, method=consent_method, text_version=consent_text_version, actor=actor)
            return spk.id

    def status(self, tenant: str, external_ref: str) -> EnrollmentResult:
        with self.store.transaction() as tx:
            spk = tx.require_speaker(tx.tenant(tenant).id, external_ref)
            return self._result(tx, spk, accepted=False, feedback=())

    def enroll(
        self,
        tenant: str,
        external_ref: str,
        embedding: FloatArray | None,
        quality: Quality,
        *,
        narrowband: bool,
        embedding_wide: FloatArray | None = None,
        replace: bool = False,
        actor: str = "",
    ) -> EnrollmentResult:
        """Add one utterance (``embedding`` may be None when the quality screen refuses it anyway).

        ``embedding`` is the telephone-band embedding; ``embedding_wide`` the full-band one of wideband audio (None
        for phone audio). ``narrowband`` is the source channel (kept with the utterance)."""
        p = self.policy
        with self.store.transaction() as tx:
            t = tx.tenant(tenant)
            spk = tx.require_speaker(t.id, external_ref, lock=True)
            if spk.status == SpeakerStatus.OPTED_OUT or tx.active_consent(spk) is None:
                raise ConsentRequired(
                    f"speaker {external_ref!r} has no valid consent record; record consent before enrolling"
                )
            overrides = tx.thresholds(t.id)
            codes = screen_quality(quality, p)
            if not codes and embedding is None:
                codes = ("NO_SPEECH",)
            hit = None
            if embedding is not None and not codes:
                hit = search_watchlist(
                    self.scorer,
                    tx.watchlist(t.id, space=self.space),
                    embedding,
                    threshold=resolve_threshold(p.watchlist_operating_point, self.operating_points, overrides),
                    narrowband=True,  # watchlist entries and this embedding are telephone band
                    probe_speech_s=quality.net_speech_s,
                )
            enrolled = tx.enrollment_utterances(spk)
            stale = any(row_space(u.space) != self.space for u in enrolled)
            existing = [] if replace or stale else enrolled
            consistency = None
            if not codes and existing:
                assert embedding is not None
                ref = combine_embeddings([u.embedding for u in existing], [u.net_speech_s for u in existing])
                consistency = self.scorer.score(
                    ref, embedding, narrowband=True, probe_speech_s=quality.net_speech_s
                ).calibrated
                needed = resolve_threshold(p.consistency_operating_point, self.operating_points, overrides)
                if consistency < needed:
                    codes = ("SPEAKER_MISMATCH",)
            details: dict[str, object] = {"codes": list(codes) or ["OK"], "replace": replace}
            if stale and not replace:
                details["restarted"] = "embedding-network-changed"
            if hit is not None:
                details["watchlist_entry"] = hit.entry_id
            if codes:
                tx.audit("enroll.refuse", actor=actor, speaker=spk, outcome="refused", details=details)
                log.info("enrolment refused: %s", ",".join(codes))
                return self._result(tx, spk, accepted=False, feedback=codes, consistency=consistency, hit=hit)
            assert embedding is not None
            if replace or stale:
                tx.clear_enrollment(spk)
            tx.add_enrollment_utterance(
                spk, embedding, quality, narrowband=narrowband, embedding_wide=embedding_wide, space=self.space
            )
            utts = tx.enrollment_utterances(spk)
            total = sum(u.net_speech_s for u in utts)
            if total >= p.min_speech_s:
                tx.save_voiceprint(
                    spk,
                    combine_embeddings([u.embedding for u in utts], [u.net_speech_s for u in utts]),
                    net_speech_s=total,
                    n_utterances=len(utts),
                    narrowband=sum(u.narrowband for u in utts) * 2 >= len(utts),
                    retention=p.retention,
                    embedding_wide=full_band_voiceprint(
                        [u.embedding_wide for u in utts], [u.net_speech_s for u in utts], p.min_speech_s
                    ),
                    space=self.space,
                )
                if spk.status == SpeakerStatus.EXPIRED:
                    spk.status = SpeakerStatus.ACTIVE.value
            details["progress"] = progress_percent(total, p.target_speech_s)
            tx.audit("enroll.accept", actor=actor, speaker=spk, outcome="accepted", details=details)
            return self._result(tx, spk, accepted=True, feedback=("OK",), consistency=consistency, hit=hit)

    def _result(
        self,
        tx: StoreTx,
        spk: Speaker,
        *,
        accepted: bool,
        feedback: tuple[str, ...],
        consistency: float | None = None,
        hit: WatchlistHit | None = None,
    ) -> EnrollmentResult:
        utts = [u for u in tx.enrollment_utterances(spk) if row_space(u.space) == self.space]
        total = sum(u.net_speech_s for u in utts)
        vp = tx.voiceprint(spk)
        return EnrollmentResult(
            accepted=accepted,
            feedback=feedback,
            progress=progress_percent(total, self.policy.target_speech_s),
            enrolled=vp is not None and vp.space == self.space,
            net_speech_s=round(total, 3),
            utterances=len(utts),
            consistency_score=consistency,
            watchlist_hit=hit,
        )
