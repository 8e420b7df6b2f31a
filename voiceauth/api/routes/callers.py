"""Calling numbers (ANI) of a speaker, managed by security and admin keys; the IVR identifies callers by them.

Numbers go in only in request bodies (never in URLs, which end up in access logs) and come out masked.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field

from voiceauth.api.deps import get_services, require
from voiceauth.api.schemas import ExternalRef
from voiceauth.api.services import AppServices
from voiceauth.store.ani import CallerNumberView, add_caller_number, caller_numbers, remove_caller_number
from voiceauth.store.keys import ApiPrincipal, Role

__all__ = ["router"]

router = APIRouter(prefix="/v1/speakers", tags=["calling numbers"])

_STAFF = require(Role.SECURITY, Role.ADMIN)


class CallerNumberIn(BaseModel):
    number: str = Field(min_length=1, max_length=128, description="E.164 or as the platform sends it (tel:, sip:).")


class CallerNumberOut(BaseModel):
    id: int
    number: str = Field(description="Masked: first and last four digits only.")
    created_by: str


class CallerNumbersOut(BaseModel):
    speaker: str
    numbers: list[CallerNumberOut]


def _out(v: CallerNumberView) -> CallerNumberOut:
    return CallerNumberOut(id=v.id, number=v.masked, created_by=v.created_by)


@router.post("/{external_ref}/phone-numbers", status_code=status.HTTP_201_CREATED, response_model=CallerNumberOut)
def add_number(
    external_ref: ExternalRef,
    body: CallerNumberIn,
    p: ApiPrincipal = Depends(_STAFF),
    svc: AppServices = Depends(get_services),
) -> CallerNumberOut:
    """Map a calling number to the speaker (409 when another speaker of the tenant has it)."""
    with svc.store.transaction() as tx:
        spk = tx.require_speaker(p.tenant_id, external_ref, lock=True)
        return _out(add_caller_number(tx, spk, body.number, actor=p.actor))


@router.get("/{external_ref}/phone-numbers", response_model=CallerNumbersOut)
def list_numbers(
    external_ref: ExternalRef, p: ApiPrincipal = Depends(_STAFF), svc: AppServices = Depends(get_services)
) -> CallerNumbersOut:
    with svc.store.transaction() as tx:
        spk = tx.require_speaker(p.tenant_id, external_ref)
        return CallerNumbersOut(speaker=external_ref, numbers=[_out(v) for v in caller_numbers(tx, spk)])


@router.delete(
    "/{external_ref}/phone-numbers/{mapping_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
def remove_number(
    external_ref: ExternalRef,
    mapping_id: int,
    p: ApiPrincipal = Depends(_STAFF),
    svc: AppServices = Depends(get_services),
) -> Response:
    with svc.store.transaction() as tx:
        spk = tx.require_speaker(p.tenant_id, external_ref, lock=True)
        remove_caller_number(tx, spk, mapping_id, actor=p.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
