"""Liveness challenges: ``POST /v1/speakers/{ref}/challenges`` -> a fresh digit string the caller must say.

A challenge is issued for any reference of the tenant, enrolled or not (the same answer and work either way, so
asking reveals nothing about who is enrolled). It is single use and expires after ``challenge_ttl_s`` (60 s); the
digits are returned here once and stored only as a keyed hash.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from voiceauth.api.deps import get_services, require
from voiceauth.api.schemas import ChallengeOut, ExternalRef
from voiceauth.api.services import AppServices
from voiceauth.store.keys import ApiPrincipal, Role

__all__ = ["router"]

router = APIRouter(prefix="/v1/speakers", tags=["enrolment and verification"])
_CHALLENGE = require(Role.TELEPHONY, Role.SECURITY)


@router.post("/{external_ref}/challenges", status_code=status.HTTP_201_CREATED, response_model=ChallengeOut)
def create_challenge(
    external_ref: ExternalRef, p: ApiPrincipal = Depends(_CHALLENGE), svc: AppServices = Depends(get_services)
) -> ChallengeOut:
    """A liveness challenge: the caller says `digits`; name `challenge_id` in the verification (single use)."""
    ch = svc.pipeline.issue_challenge(p.tenant, external_ref, actor=p.actor)
    return ChallengeOut(challenge_id=ch.challenge_id, digits=ch.digits, expires_at=ch.expires_at)
