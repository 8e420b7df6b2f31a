"""AudioHook secrets on API keys: stored encrypted, decrypted on authentication, handed to the IVR key resolver."""

from __future__ import annotations

import base64
import secrets
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import select

from ivr.routes import ServicesKeys
from voiceauth.errors import StoreError
from voiceauth.store.crypto import Keyring
from voiceauth.store.keys import ApiPrincipal, authenticate, create_api_key
from voiceauth.store.models import ApiKey
from voiceauth.store.repo import Store


def test_secret_is_encrypted_at_rest_and_reaches_the_audiohook_resolver(store: Store) -> None:
    secret = secrets.token_bytes(32)
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme")
        _, signed_key = create_api_key(tx, t.id, "telephony", actor="test", audiohook_secret=secret)
        _, plain_key = create_api_key(tx, t.id, "telephony", actor="test")
    with store.transaction() as tx:
        blobs = [r.audiohook_secret for r in tx.session.execute(select(ApiKey)).scalars()]
    assert None in blobs
    stored = next(b for b in blobs if b is not None)
    assert secret not in stored and base64.b64encode(secret) not in stored

    def auth(key: str) -> ApiPrincipal | None:
        with store.transaction() as tx:
            return authenticate(tx, key)

    resolver = ServicesKeys(SimpleNamespace(authenticate=auth))
    signed, plain = resolver.resolve(signed_key), resolver.resolve(plain_key)
    assert signed is not None and signed.audiohook_secret == secret and signed.tenant == "acme"
    assert plain is not None and plain.audiohook_secret is None
    assert resolver.resolve("va_nope") is None


def test_too_short_secret_is_refused(store: Store) -> None:
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme")
        with pytest.raises(StoreError, match="16 to 256"):
            create_api_key(tx, t.id, "telephony", actor="test", audiohook_secret=b"short")


def test_data_key_rotation_reencrypts_the_secret(store: Store) -> None:
    secret = secrets.token_bytes(32)
    with store.transaction() as tx:
        t = tx.get_or_create_tenant("acme")
        _, key = create_api_key(tx, t.id, "telephony", actor="test", audiohook_secret=secret)
    old_key, new_key = np.random.default_rng(7).bytes(32), np.random.default_rng(8).bytes(32)
    rotating = Store(store.engine, Keyring([new_key, old_key]), clock=store.clock)
    assert rotating.reencrypt() == 1
    only_new = Store(store.engine, Keyring([new_key]), clock=store.clock)
    with only_new.transaction() as tx:
        principal = authenticate(tx, key)
    assert principal is not None and principal.audiohook_secret == secret
