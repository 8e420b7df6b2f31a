"""Admin keys: tenants and API keys.

An admin key manages the keys of its own tenant. ``POST /v1/tenants`` creates a new, empty tenant and returns
that tenant's first admin key (once); the calling key gets no access to the new tenant's data.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Response, status
from sqlalchemy import select

from voiceauth.api.deps import get_services, require
from voiceauth.api.schemas import KeyCreatedOut, KeyCreateIn, KeyOut, TenantCreatedOut, TenantCreateIn, TenantOut
from voiceauth.api.services import AppServices
from voiceauth.errors import AlreadyExists
from voiceauth.store.keys import ApiPrincipal, Role, create_api_key, list_api_keys, revoke_api_key
from voiceauth.store.models import ApiKey, Tenant

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["admin"])
_ADMIN = require(Role.ADMIN)
_ANY = require(Role.ADMIN, Role.SECURITY, Role.TELEPHONY)


def _key_out(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        prefix=row.prefix,
        role=row.role,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        twilio=row.twilio_auth_token is not None,
    )


@router.get("/tenant", response_model=TenantOut)
def current_tenant(p: ApiPrincipal = Depends(_ANY), svc: AppServices = Depends(get_services)) -> TenantOut:
    """The tenant the calling key belongs to."""
    with svc.store.transaction() as tx:
        t = tx.session.get(Tenant, p.tenant_id)
        assert t is not None
        return TenantOut(name=t.name, operating_point=t.operating_point, created_at=t.created_at)


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantCreatedOut)
def create_tenant(
    body: TenantCreateIn, p: ApiPrincipal = Depends(_ADMIN), svc: AppServices = Depends(get_services)
) -> TenantCreatedOut:
    """Create a tenant (a contact centre, a brand) and its first admin key, shown once."""
    with svc.store.transaction() as tx:
        if tx.session.execute(select(Tenant).where(Tenant.name == body.name)).scalar_one_or_none() is not None:
            raise AlreadyExists(f"tenant {body.name!r} already exists")
        t = tx.get_or_create_tenant(body.name, actor=p.actor)
        _, key = create_api_key(tx, t.id, Role.ADMIN.value, label="first admin key", actor=p.actor)
        return TenantCreatedOut(name=t.name, admin_key=key)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(p: ApiPrincipal = Depends(_ADMIN), svc: AppServices = Depends(get_services)) -> list[KeyOut]:
    """This tenant's keys (prefixes and roles only; keys are stored hashed and cannot be shown again)."""
    with svc.store.transaction() as tx:
        tx.audit("key.list", actor=p.actor, tenant_id=p.tenant_id)
        return [_key_out(r) for r in list_api_keys(tx, p.tenant_id)]


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreatedOut)
def create_key(
    body: KeyCreateIn, p: ApiPrincipal = Depends(_ADMIN), svc: AppServices = Depends(get_services)
) -> KeyCreatedOut:
    """A new key of this tenant; the response holds the key once. With ``twilio_auth_token`` (a telephony or admin
    key) the tenant's Twilio traffic must be signed with that token."""
    with svc.store.transaction() as tx:
        row, key = create_api_key(
            tx, p.tenant_id, body.role, label=body.label, actor=p.actor, twilio_auth_token=body.twilio_auth_token
        )
        return KeyCreatedOut(**_key_out(row).model_dump(), key=key)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def revoke_key(
    key_id: int = Path(ge=1, le=2**62), p: ApiPrincipal = Depends(_ADMIN), svc: AppServices = Depends(get_services)
) -> Response:
    """Revoke a key of this tenant (effective at once)."""
    with svc.store.transaction() as tx:
        revoke_api_key(tx, p.tenant_id, key_id, actor=p.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
