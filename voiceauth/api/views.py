"""Turning core results into response bodies, with what each role may see (telephony never sees a score)."""

from __future__ import annotations

from enrollment.policy import EnrollmentPolicy, progress_percent
from enrollment.session import EnrollmentResult
from voiceauth.api.schemas import ConsentOut, EnrollmentOut, SpeakerOut, VerificationOut, WatchlistHitOut
from voiceauth.config import Settings
from voiceauth.embedding.space import row_space
from voiceauth.store.keys import ApiPrincipal, Role
from voiceauth.store.models import Speaker, Voiceprint
from voiceauth.store.repo import StoreTx
from voiceauth.verification import VerificationResult
from voiceauth.watchlist import WatchlistHit

__all__ = ["enrollment_view", "speaker_view", "verification_view"]


def speaker_view(tx: StoreTx, spk: Speaker, settings: Settings, space: str) -> SpeakerOut:
    """``space``: the running engine's telephone-band network; enrolment made by another one does not count."""
    utts = [u for u in tx.enrollment_utterances(spk) if u.space == space]
    total = sum(u.net_speech_s for u in utts)
    consent = tx.active_consent(spk)
    vp = tx.session.get(Voiceprint, spk.id)
    return SpeakerOut(
        external_ref=spk.external_ref,
        status=spk.status,
        enrolled=vp is not None and row_space(vp.space) == space,
        progress=progress_percent(total, EnrollmentPolicy.from_settings(settings).target_speech_s),
        net_speech_s=round(total, 3),
        utterances=len(utts),
        voice_disabled=spk.voice_disabled,
        consent=None
        if consent is None
        else ConsentOut(method=consent.method, text_version=consent.text_version, given_at=consent.given_at),
    )


def _hit(hit: WatchlistHit | None) -> WatchlistHitOut | None:
    return None if hit is None else WatchlistHitOut(entry_id=hit.entry_id, label=hit.label, score=round(hit.score, 2))


def enrollment_view(res: EnrollmentResult, p: ApiPrincipal) -> EnrollmentOut:
    return EnrollmentOut(
        progress=res.progress,
        enrolled=res.enrolled,
        feedback=list(res.feedback),
        accepted=res.accepted,
        net_speech_s=res.net_speech_s,
        utterances=res.utterances,
        watchlist_hit=_hit(res.watchlist_hit) if p.role == Role.SECURITY else None,
    )


def verification_view(res: VerificationResult, p: ApiPrincipal) -> VerificationOut:
    if p.role != Role.SECURITY:
        return VerificationOut(decision=res.decision)
    return VerificationOut(
        decision=res.decision,
        score=None if res.score is None else round(res.score, 2),
        raw_score=None if res.raw_score is None else round(res.raw_score, 4),
        threshold=res.threshold,
        operating_point=res.operating_point,
        net_speech_s=round(res.net_speech_s, 3),
        locked_until=res.locked_until,
        watchlist_hit=_hit(res.watchlist_hit),
        attempt_id=res.attempt_id,
        spoof_score=None if res.spoof_score is None else round(res.spoof_score, 4),
        spoof_threshold=res.spoof_threshold,
        spoof_reason=res.spoof_reason,  # type: ignore[arg-type]
        band=res.band,  # type: ignore[arg-type]
        challenge_result=res.challenge_result,  # type: ignore[arg-type]
    )
