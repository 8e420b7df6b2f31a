"""API keys: created once, shown once, stored only as a SHA-256 hash, scoped to one tenant and one role.

A key looks like ``va_<prefix>_<secret>``: ``prefix`` (8 hex digits) is stored in clear so staff can tell keys
apart in listings and audit events; ``secret`` is 256 random bits. Because the secret is random and long, a plain
SHA-256 is a sound verifier (no password-stretching needed) and lookups are a unique-index hit on the hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select

from voiceauth.errors import DataKeyError, NotFound, StoreError
from voiceauth.store.aad import api_secret_aad
from voiceauth.store.models import ApiKey, Tenant
from voiceauth.store.repo import StoreTx

__all__ = [
    "KEY_PREFIX",
    "ApiPrincipal",
    "Role",
    "authenticate",
    "check_twilio_token",
    "create_api_key",
    "hash_api_key",
    "list_api_keys",
    "revoke_api_key",
    "twilio_tokens",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "va_"
#: last_used_at is written at most this often per key (no write per request)
_TOUCH_EVERY = dt.timedelta(seconds=60)


class Role(StrEnum):
    TELEPHONY = "telephony"  # enrol, verify: decisions only
    SECURITY = "security"  # scores, thresholds, audit, watchlist
    ADMIN = "admin"  # tenants, keys


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling: one key of one tenant."""

    key_id: int
    prefix: str
    role: Role
    tenant_id: int
    tenant: str
    #: the key's AudioHook signature secret (decrypted), or None when none is set
    audiohook_secret: bytes | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        """How audit events name this caller (never the key itself)."""
        return f"key:{self.prefix}:{self.role.value}"


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        raise StoreError(f"role {role!r} is not valid; use one of {', '.join(r.value for r in Role)}") from exc


def _secret_aad(column: str, row: ApiKey, key_id: str) -> bytes:
    return api_secret_aad(column, row.id, tenant_id=row.tenant_id, key_id=key_id)


#: Twilio auth tokens are 32 hex digits; other lengths are accepted within these bounds (test accounts, rotations)
_TWILIO_TOKEN_LEN = (16, 128)


def check_twilio_token(token: str) -> str:
    """A Twilio auth token as given, or StoreError naming what is accepted."""
    token = token.strip()
    lo, hi = _TWILIO_TOKEN_LEN
    if not lo <= len(token) <= hi or not token.isprintable() or " " in token:
        raise StoreError(
            f"Twilio auth token of {len(token)} characters is not valid; use the account's auth token "
            f"({lo}-{hi} printable characters without spaces, 32 hex digits as Twilio issues them)"
        )
    return token


def create_api_key(
    tx: StoreTx,
    tenant_id: int,
    role: str,
    *,
    label: str = "",
    actor: str,
    audiohook_secret: bytes | None = None,
    twilio_auth_token: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key for ``tenant_id`` -> (row, the key in clear: show it once, it is not kept).

    ``audiohook_secret`` (the AudioHook client secret, raw bytes) is stored encrypted with the data keyring; the
    AudioHook route then refuses requests of this key that are not signed with it. ``twilio_auth_token`` (the
    tenant's Twilio account auth token, on a telephony or admin key) is stored encrypted too: the tenant's Twilio
    streams and TwiML webhook must then carry an X-Twilio-Signature made with it (see :func:`twilio_tokens`).
    """
    r = _parse_role(role)
    if twilio_auth_token is not None:
        twilio_auth_token = check_twilio_token(twilio_auth_token)
        if r not in (Role.TELEPHONY, Role.ADMIN):
            raise StoreError(f"a Twilio auth token belongs on a telephony (or admin) key, not a {r.value} key")
    if len(label) > 128:
        raise StoreError(f"key label of {len(label)} characters is too long; use at most 128")
    if audiohook_secret is not None and not 16 <= len(audiohook_secret) <= 256:
        raise StoreError(f"AudioHook secret of {len(audiohook_secret)} bytes; use 16 to 256 bytes")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        tenant_id=tenant_id, role=r.value, key_hash=hash_api_key(key), prefix=prefix, label=label, created_at=tx.clock()
    )
    tx.session.add(row)
    tx.session.flush()
    if audiohook_secret is not None:
        row.audiohook_key_id, row.audiohook_secret = tx.keyring.encrypt_bound(
            audiohook_secret, lambda k: _secret_aad("audiohook_secret", row, k)
        )
    if twilio_auth_token is not None:
        row.twilio_key_id, row.twilio_auth_token = tx.keyring.encrypt_bound(
            twilio_auth_token.encode(), lambda k: _secret_aad("twilio_auth_token", row, k)
        )
    tx.session.flush()
    details = {"key": prefix, "role": r.value, "label": label, "twilio": twilio_auth_token is not None}
    tx.audit("key.create", actor=actor, tenant_id=tenant_id, details=details)
    return row, key


def authenticate(tx: StoreTx, key: str) -> ApiPrincipal | None:
    """The principal of a valid, unrevoked key, or None (unknown, malformed or revoked)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    digest = hash_api_key(key)
    row = tx.session.execute(select(ApiKey).where(ApiKey.key_hash == digest)).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    tenant = tx.session.get(Tenant, row.tenant_id)
    if tenant is None:
        return None
    now = tx.clock()
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
        row.last_used_at = now
    secret = None
    if row.audiohook_secret is not None and row.audiohook_key_id is not None:
        aad = _secret_aad("audiohook_secret", row, row.audiohook_key_id)
        secret = tx.keyring.decrypt(row.audiohook_key_id, row.audiohook_secret, aad)
    return ApiPrincipal(row.id, row.prefix, Role(row.role), tenant.id, tenant.name, secret)


def twilio_tokens(tx: StoreTx, tenant_name: str) -> list[str] | None:
    """The Twilio auth tokens of tenant ``tenant_name`` (on its unrevoked keys), decrypted; None when the tenant
    does not exist. An empty list: the tenant has no Twilio credential (its Twilio traffic is refused outside the
    embedded demo). A token that fails its integrity check is skipped (logged): it cannot be trusted."""
    tenant = tx.session.execute(select(Tenant).where(Tenant.name == tenant_name)).scalar_one_or_none()
    if tenant is None:
        return None
    rows = tx.session.execute(
        select(ApiKey).where(
            ApiKey.tenant_id == tenant.id, ApiKey.revoked_at.is_(None), ApiKey.twilio_auth_token.is_not(None)
        )
    ).scalars()
    out = []
    for row in rows:
        if row.twilio_key_id is None or row.twilio_auth_token is None:
            continue
        try:
            aad = _secret_aad("twilio_auth_token", row, row.twilio_key_id)
            out.append(tx.keyring.decrypt(row.twilio_key_id, row.twilio_auth_token, aad).decode())
        except DataKeyError as exc:
            log.error("the Twilio auth token of API key %s is unreadable (%s); not used", row.prefix, exc)
    return out


def list_api_keys(tx: StoreTx, tenant_id: int) -> list[ApiKey]:
    return list(tx.session.execute(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.id)).scalars())


def revoke_api_key(tx: StoreTx, tenant_id: int, key_id: int, *, actor: str) -> ApiKey:
    row = tx.session.get(ApiKey, key_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"API key {key_id} does not exist in this tenant")
    if row.revoked_at is None:
        row.revoked_at = tx.clock()
        tx.audit("key.revoke", actor=actor, tenant_id=tenant_id, details={"key": row.prefix})
    return row
