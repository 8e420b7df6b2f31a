"""Enrolment and verification: multipart audio uploads, run through the pipeline on the audio thread pool.

Audio may be a WAV or FLAC file (the container is sniffed), or a raw telephone stream with ``format``
(``mulaw``, ``alaw``, ``l16``) and ``sample_rate``. It is never stored.

Unknown speakers toward telephony keys: a verification for an external reference that is not registered in the
tenant answers exactly what a registered, enrolled speaker with a mismatching voice would get (``REJECT``, or
``NOT_ENOUGH_SPEECH`` for too little speech), after the same work (the probe is embedded and scored against a
decoy), so the decision channel does not reveal who is registered. Security keys see the true ``NOT_ENROLLED``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, File, Form, UploadFile

from voiceauth.api.deps import get_services, require
from voiceauth.api.schemas import EnrollmentOut, ExternalRef, VerificationOut
from voiceauth.api.services import AppServices
from voiceauth.api.views import enrollment_view, verification_view
from voiceauth.errors import AudioDecodeError, AudioLimitExceeded
from voiceauth.store.keys import ApiPrincipal, Role
from voiceauth.verification import Decision, VerificationResult

__all__ = ["read_upload", "router"]

router = APIRouter(prefix="/v1/speakers", tags=["enrolment and verification"])
_AUDIO = require(Role.TELEPHONY, Role.SECURITY)
_CHUNK = 1 << 16
_DECOY = np.random.default_rng(20260101).standard_normal(192).astype(np.float32)
_DECOY /= np.linalg.norm(_DECOY)

_FORMAT_HELP = "Raw stream format (`mulaw`, `alaw`, `l16`); omit for WAV/FLAC files."


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The uploaded file's bytes, refusing more than ``limit`` bytes without reading further."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise AudioLimitExceeded(f"the audio upload exceeds {limit} bytes; send at most {limit} bytes")
        parts.append(chunk)
    if size == 0:
        raise AudioDecodeError("the audio upload is empty (0 bytes); send a WAV or FLAC file or a raw stream")
    return b"".join(parts)


def _decode_args(fmt: str | None, sample_rate: int | None, channel: int | None) -> dict[str, Any]:
    return {"fmt": fmt or None, "sample_rate": sample_rate, "channel": channel}


@router.post("/{external_ref}/enrollments", response_model=EnrollmentOut, response_model_exclude_none=True)
async def enroll(
    external_ref: ExternalRef,
    audio: UploadFile = File(description="The caller's speech: WAV, FLAC or a raw telephone stream."),
    replace: bool = Form(False, description="Start a re-enrolment: this utterance replaces all earlier ones."),
    format: str | None = Form(None, max_length=16, description=_FORMAT_HELP),  # noqa: A002
    sample_rate: int | None = Form(None, ge=1, le=192000, description="Sample rate of a raw stream."),
    channel: int | None = Form(None, ge=0, le=63, description="Channel of a multi-channel file (default 0)."),
    p: ApiPrincipal = Depends(_AUDIO),
    svc: AppServices = Depends(get_services),
) -> EnrollmentOut:
    """Add one utterance to the speaker's enrolment; `progress` (0-100), `enrolled`, and `feedback` codes."""
    data = await read_upload(audio, svc.settings.max_upload_bytes)
    decode = _decode_args(format, sample_rate, channel)

    def work() -> EnrollmentOut:
        utt = svc.utterance(data, decode)
        res = svc.pipeline.enroll(p.tenant, external_ref, utt, replace=replace, actor=p.actor)
        svc.metrics.enrollments.labels("accepted" if res.accepted else "refused").inc()
        svc.metrics.enrollment_progress.observe(res.progress)
        if res.watchlist_hit is not None:
            svc.metrics.watchlist_hits.labels("enroll").inc()
        return enrollment_view(res, p)

    return await svc.run_audio(work)


@router.post("/{external_ref}/verifications", response_model=VerificationOut, response_model_exclude_none=True)
async def verify(
    external_ref: ExternalRef,
    audio: UploadFile = File(description="The caller's speech: WAV, FLAC or a raw telephone stream."),
    call_id: str = Form("", max_length=128, description="Your call id, kept with the attempt and audit event."),
    format: str | None = Form(None, max_length=16, description=_FORMAT_HELP),  # noqa: A002
    sample_rate: int | None = Form(None, ge=1, le=192000, description="Sample rate of a raw stream."),
    channel: int | None = Form(None, ge=0, le=63, description="Channel of a multi-channel file (default 0)."),
    challenge_id: str | None = Form(
        None,
        max_length=40,
        description="The liveness challenge this speech answers (POST .../challenges): ACCEPT needs the voice and"
        " the digits; wrong or missing digits are CHALLENGE_FAILED.",
    ),
    p: ApiPrincipal = Depends(_AUDIO),
    svc: AppServices = Depends(get_services),
) -> VerificationOut:
    """1:1 verification of the claimed speaker: `decision` (+ `score`, `raw_score` for security keys). With
    `challenge_id`, the speech must also say the challenge's digits; a used, expired or unknown challenge is
    refused with a problem document (409 `challenge-used`, 410 `challenge-expired`, 404 `challenge-unknown`)."""
    data = await read_upload(audio, svc.settings.max_upload_bytes)
    decode = _decode_args(format, sample_rate, channel)

    def work() -> VerificationOut:
        pipe = svc.pipeline
        utt = svc.utterance(data, decode)
        emb, wide = pipe.embed_probe(utt, challenge=challenge_id is not None)  # both bands, whoever is claimed
        answer = pipe.hear(p.tenant, external_ref, utt, challenge_id) if challenge_id else None
        res = pipe.verify_probe(
            p.tenant, external_ref, utt, emb, wide, call_id=call_id, actor=p.actor, challenge=answer
        )
        svc.metrics.decisions.labels(res.decision.value).inc()
        if res.watchlist_hit is not None:
            svc.metrics.watchlist_hits.labels("verify").inc()
        if res.decision == Decision.NOT_ENROLLED and p.role == Role.TELEPHONY:
            with svc.store.transaction() as tx:
                registered = tx.speaker(p.tenant_id, external_ref) is not None
            if not registered:
                if emb is None:
                    return VerificationOut(decision=Decision.NOT_ENOUGH_SPEECH)
                # the same scoring work as a mismatching enrolled speaker (full band when the probe has one)
                pipe.verifier.scorer.score(
                    _DECOY,
                    wide if wide is not None else emb,
                    narrowband=wide is None,
                    probe_speech_s=utt.quality.net_speech_s,
                )
                return verification_view(VerificationResult(decision=Decision.REJECT), p)
        return verification_view(res, p)

    return await svc.run_audio(work)
