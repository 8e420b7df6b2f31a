"""The voiceprint store: encrypted biometric rows, consent, attempts, lockout and a hash-chained audit log."""

from __future__ import annotations

from voiceauth.store.audit import ChainReport, verify_chain
from voiceauth.store.crypto import Keyring, load_keyring
from voiceauth.store.repo import Clock, Store, StoredUtterance, StoredVoiceprint, StoreTx, open_store, utcnow

__all__ = [
    "ChainReport",
    "Clock",
    "Keyring",
    "Store",
    "StoreTx",
    "StoredUtterance",
    "StoredVoiceprint",
    "load_keyring",
    "open_store",
    "utcnow",
    "verify_chain",
]
