"""Speakers by external reference: registration with consent, status, consent, opt-out, voice switch, erasure."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from voiceauth.api.deps import get_services, require
from voiceauth.api.schemas import ConsentIn, ConsentOut, ExternalRef, SpeakerCreateIn, SpeakerOut, VoiceIn
from voiceauth.api.services import AppServices
from voiceauth.api.views import speaker_view
from voiceauth.errors import NotFound
from voiceauth.store.keys import ApiPrincipal, Role

__all__ = ["router"]

router = APIRouter(prefix="/v1/speakers", tags=["speakers"])

_LIFECYCLE = require(Role.TELEPHONY, Role.SECURITY)
_SECURITY = require(Role.SECURITY)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SpeakerOut)
def create_speaker(
    body: SpeakerCreateIn, p: ApiPrincipal = Depends(_LIFECYCLE), svc: AppServices = Depends(get_services)
) -> SpeakerOut:
    """Register a caller with their consent record (no enrolment without consent). 409 if the reference exists."""
    with svc.store.transaction() as tx:
        spk = tx.create_speaker(p.tenant_id, body.external_ref, actor=p.actor)
        tx.record_consent(spk, method=body.consent.method, text_version=body.consent.text_version, actor=p.actor)
        return speaker_view(tx, spk, svc.settings, svc.pipeline.space)


@router.get("/{external_ref}", response_model=SpeakerOut)
def get_speaker(
    external_ref: ExternalRef, p: ApiPrincipal = Depends(_LIFECYCLE), svc: AppServices = Depends(get_services)
) -> SpeakerOut:
    """The speaker's status and enrolment progress (no biometric data)."""
    with svc.store.transaction() as tx:
        spk = tx.require_speaker(p.tenant_id, external_ref)
        tx.audit("speaker.read", actor=p.actor, speaker=spk)
        return speaker_view(tx, spk, svc.settings, svc.pipeline.space)


@router.delete("/{external_ref}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def erase_speaker(
    external_ref: ExternalRef, p: ApiPrincipal = Depends(_LIFECYCLE), svc: AppServices = Depends(get_services)
) -> Response:
    """Erasure: the speaker, every biometric row, its replay fingerprints and the call records naming the reference
    are deleted; the audit keeps only a pseudonymous record. For a reference that is not registered (404), the call
    records naming it are deleted all the same."""
    with svc.store.transaction() as tx:
        spk = tx.speaker(p.tenant_id, external_ref, lock=True)
        if spk is not None:
            tx.erase(spk, actor=p.actor)
        else:
            tx.erase_unregistered(p.tenant_id, external_ref, actor=p.actor)
    if spk is None:
        raise NotFound(
            f"speaker {external_ref!r} is not registered in this tenant (call records naming it were erased)"
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{external_ref}/consent", status_code=status.HTTP_201_CREATED, response_model=ConsentOut)
def record_consent(
    external_ref: ExternalRef,
    body: ConsentIn,
    p: ApiPrincipal = Depends(_LIFECYCLE),
    svc: AppServices = Depends(get_services),
) -> ConsentOut:
    """Record (renewed) consent; a speaker who opted out may enrol again afterwards."""
    with svc.store.transaction() as tx:
        spk = tx.require_speaker(p.tenant_id, external_ref, lock=True)
        c = tx.record_consent(spk, method=body.method, text_version=body.text_version, actor=p.actor)
        return ConsentOut(method=c.method, text_version=c.text_version, given_at=c.given_at)


@router.post("/{external_ref}/opt-out", response_model=SpeakerOut)
def opt_out(
    external_ref: ExternalRef, p: ApiPrincipal = Depends(_LIFECYCLE), svc: AppServices = Depends(get_services)
) -> SpeakerOut:
    """Opt-out: the voiceprint, replay fingerprints and call records are deleted and consent withdrawn; later
    verifications answer OPTED_OUT. For a reference that is not registered (404), the call records naming it are
    deleted all the same."""
    with svc.store.transaction() as tx:
        spk = tx.speaker(p.tenant_id, external_ref, lock=True)
        if spk is not None:
            tx.opt_out(spk, actor=p.actor)
            return speaker_view(tx, spk, svc.settings, svc.pipeline.space)
        tx.erase_unregistered(p.tenant_id, external_ref, actor=p.actor, action="opt_out")
    raise NotFound(f"speaker {external_ref!r} is not registered in this tenant (call records naming it were erased)")


@router.put("/{external_ref}/voice", response_model=SpeakerOut)
def set_voice(
    external_ref: ExternalRef,
    body: VoiceIn,
    p: ApiPrincipal = Depends(_SECURITY),
    svc: AppServices = Depends(get_services),
) -> SpeakerOut:
    """Security staff: disable voice for a speaker, or re-enable it after the lockout's hard cap (clears lockout)."""
    with svc.store.transaction() as tx:
        spk = tx.require_speaker(p.tenant_id, external_ref, lock=True)
        tx.set_voice_disabled(spk, not body.enabled, actor=p.actor)
        return speaker_view(tx, spk, svc.settings, svc.pipeline.space)
