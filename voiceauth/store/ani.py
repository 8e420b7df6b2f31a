"""Calling numbers (ANI) -> speakers, per tenant: how the IVR identifies a caller before verifying the voice.

A phone number is personal data, so it is never stored in clear: ``caller_numbers`` keeps a keyed hash of the
normalised number (HMAC-SHA256 under a key derived from the active data key, see
:meth:`~voiceauth.store.crypto.Keyring.lookup_hashes`) for lookups, and its AES-256-GCM ciphertext (bound to the
tenant) for masked listings. A lookup hashes the caller's number under every key of the keyring, so mappings made
before a data-key rotation keep working while the old key is in the keyring; :func:`reencrypt_caller_numbers`
(run by ``voiceauth keys rotate-data-key``) moves them to the active key. Audit events name the speaker's
pseudonym, never the number. A number maps to one speaker per tenant; a speaker may have several numbers.

Functions take a :class:`~voiceauth.store.repo.StoreTx`, so a caller decides the transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from voiceauth.errors import AlreadyExists, NotFound, StoreError
from voiceauth.store.models import CallerNumber, Speaker
from voiceauth.store.repo import Store, StoreTx

__all__ = [
    "CallerNumberView",
    "add_caller_number",
    "caller_numbers",
    "lookup_caller",
    "mask_number",
    "normalize_number",
    "reencrypt_caller_numbers",
    "remove_caller_number",
]

_SEPARATORS = re.compile(r"[\s\-.()/]")
_NUMBER = re.compile(r"^\+?[0-9]{3,15}$")


def normalize_number(raw: str) -> str:
    """A calling number as the platforms send it -> its digits (``+14155550100`` -> ``14155550100``).

    Accepts ``+1 (415) 555-0100``, ``tel:+14155550100``, ``sip:+14155550100@carrier.example;user=phone``,
    ``0014155550100``; the international prefix (``+`` or ``00``) is dropped, so platforms that send it and
    platforms that do not match the same mapping.
    Raises :class:`StoreError` naming what is accepted (E.164: up to 15 digits) otherwise.
    """
    text = (raw or "").strip()
    low = text.lower()
    for scheme in ("tel:", "sip:", "sips:"):
        if low.startswith(scheme):
            text = text[len(scheme) :]
            break
    text = text.split("@", 1)[0].split(";", 1)[0]
    text = _SEPARATORS.sub("", text)
    if text.startswith("00"):  # international prefix written out
        text = text[2:]
    if not _NUMBER.match(text):
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise StoreError(
            f"calling number {shown!r} is not valid; use 3-15 digits with an optional leading +, "
            "e.g. +14155550100 or tel:+14155550100"
        )
    return text.lstrip("+")


def mask_number(number: str) -> str:
    """``14155550100`` -> ``1******0100`` (enough for staff to tell numbers apart)."""
    head = 1
    if len(number) <= head + 4:
        return "*" * len(number)
    return number[:head] + "*" * (len(number) - head - 4) + number[-4:]


@dataclass(frozen=True)
class CallerNumberView:
    id: int
    masked: str
    created_by: str


def _aad(tenant_id: int) -> bytes:
    return f"voiceauth:caller_numbers:{tenant_id}".encode()


def _rows_for(tx: StoreTx, tenant_id: int, number: str) -> list[CallerNumber]:
    hashes = tx.keyring.lookup_hashes(number.encode())
    q = select(CallerNumber).where(
        CallerNumber.tenant_id == tenant_id, CallerNumber.number_hash.in_(sorted(hashes.values()))
    )
    return [r for r in tx.session.execute(q).scalars() if hashes.get(r.hash_key_id) == r.number_hash]


def add_caller_number(tx: StoreTx, speaker: Speaker, number: str, *, actor: str) -> CallerNumberView:
    """Map ``number`` to ``speaker`` (idempotent for the same speaker; 409 when another speaker has it)."""
    norm = normalize_number(number)
    for row in _rows_for(tx, speaker.tenant_id, norm):
        if row.speaker_id != speaker.id:
            raise AlreadyExists("this calling number is already mapped to another speaker in this tenant")
        return CallerNumberView(row.id, mask_number(norm), row.created_by)
    hash_key = tx.keyring.active_id
    key_id, blob = tx.keyring.encrypt(norm.encode(), _aad(speaker.tenant_id))
    row = CallerNumber(
        tenant_id=speaker.tenant_id,
        speaker_id=speaker.id,
        hash_key_id=hash_key,
        number_hash=tx.keyring.lookup_hashes(norm.encode())[hash_key],
        key_id=key_id,
        number=blob,
        created_by=actor,
        created_at=tx.clock(),
    )
    tx.session.add(row)
    tx.session.flush()
    tx.audit("caller_number.add", actor=actor, speaker=speaker, details={"mapping": row.id})
    return CallerNumberView(row.id, mask_number(norm), actor)


def caller_numbers(tx: StoreTx, speaker: Speaker) -> list[CallerNumberView]:
    rows = tx.session.execute(
        select(CallerNumber).where(CallerNumber.speaker_id == speaker.id).order_by(CallerNumber.id)
    ).scalars()
    aad = _aad(speaker.tenant_id)
    return [
        CallerNumberView(r.id, mask_number(tx.keyring.decrypt(r.key_id, r.number, aad).decode()), r.created_by)
        for r in rows
    ]


def remove_caller_number(tx: StoreTx, speaker: Speaker, mapping_id: int, *, actor: str) -> None:
    row = tx.session.get(CallerNumber, mapping_id)
    if row is None or row.speaker_id != speaker.id:
        raise NotFound(f"calling-number mapping {mapping_id} does not exist for this speaker")
    tx.session.delete(row)
    tx.session.flush()
    tx.audit("caller_number.remove", actor=actor, speaker=speaker, details={"mapping": mapping_id})


def lookup_caller(tx: StoreTx, tenant_id: int, number: str) -> str | None:
    """The external reference of the speaker a calling number maps to, or None (also for unparseable numbers:
    a withheld or odd caller id must not fail the call, it just is not identified)."""
    try:
        norm = normalize_number(number)
    except StoreError:
        return None
    rows = _rows_for(tx, tenant_id, norm)
    if not rows:
        return None
    spk = tx.session.get(Speaker, rows[0].speaker_id)
    return spk.external_ref if spk is not None else None


def reencrypt_caller_numbers(store: Store, *, actor: str = "system", batch: int = 200) -> int:
    """Re-hash and re-encrypt every mapping not under the active data key; returns the count."""
    total = 0
    active = store.keyring.active_id
    while True:
        with store.transaction() as tx:
            rows = list(
                tx.session.execute(
                    select(CallerNumber)
                    .where((CallerNumber.key_id != active) | (CallerNumber.hash_key_id != active))
                    .limit(batch)
                    .with_for_update()
                ).scalars()
            )
            for r in rows:
                aad = _aad(r.tenant_id)
                number = tx.keyring.decrypt(r.key_id, r.number, aad)
                r.key_id, r.number = tx.keyring.encrypt(number, aad)
                r.hash_key_id, r.number_hash = active, tx.keyring.lookup_hashes(number)[active]
            if rows:
                tx.audit("data_key.reencrypt", actor=actor, details={"table": "caller_numbers", "rows": len(rows)})
        total += len(rows)
        if len(rows) < batch:
            return total
