"""Encryption at rest for voiceprints and embeddings: AES-256-GCM with a key id on every row.

A :class:`Keyring` holds one or more 32-byte data keys. The first (active) key encrypts; every key decrypts, so a
new key can be put in front and rows re-encrypted in the background without downtime. A key's id is derived from
the key itself (first 16 hex digits of SHA-256 over a fixed label and the key), so no table of ids has to be kept.

Blob layout: ``b"\\x01" + nonce(12) + ciphertext + tag(16)``; the associated data binds a blob to its row's
context (table, tenant, speaker) and every label stored beside it (:mod:`voiceauth.store.aad`), so a ciphertext
moved to another speaker's row, or a row whose labels were edited, does not decrypt.

Keys come from :class:`~voiceauth.config.Settings` (``data_key`` or ``data_key_file``); in development a key file
is generated in the data directory. A KMS can be plugged in by building a :class:`Keyring` from its keys.
Keys are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.errors import ConfigError, DataKeyError

__all__ = [
    "Keyring",
    "add_key_to_file",
    "decode_vector",
    "encode_vector",
    "generate_key",
    "key_file_path",
    "key_id_of",
    "load_keyring",
]

log = logging.getLogger(__name__)

_VERSION = b"\x01"
_NONCE = 12
KEY_FILE_NAME = "data.key"


def key_id_of(key: bytes) -> str:
    """A stable, non-secret identifier of a data key."""
    return hashlib.sha256(b"voiceauth-data-key-id\x00" + key).hexdigest()[:16]


def generate_key() -> bytes:
    return secrets.token_bytes(32)


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DataKeyError(f"data key in {where} is not valid base64; expected base64 of 32 random bytes") from exc
    if len(key) != 32:
        raise DataKeyError(f"data key in {where} decodes to {len(key)} bytes; AES-256 needs exactly 32")
    return key


class Keyring:
    """Data keys by id; the first one encrypts."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise DataKeyError("a keyring needs at least one 32-byte data key")
        for k in keys:
            if len(k) != 32:
                raise DataKeyError(f"data key of {len(k)} bytes given; AES-256 needs exactly 32")
        self._keys = {key_id_of(k): AESGCM(k) for k in keys}
        # keys of keyed lookup hashes (e.g. calling numbers), derived per data key and never stored
        self._mac_keys = {key_id_of(k): hashlib.sha256(b"voiceauth-lookup-hash\x00" + k).digest() for k in keys}
        self.active_id = key_id_of(keys[0])
        self.ids = tuple(key_id_of(k) for k in keys)

    def __repr__(self) -> str:  # never the key material
        return f"Keyring(active={self.active_id}, ids={list(self.ids)})"

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt with the active key -> (key id, blob)."""
        nonce = os.urandom(_NONCE)
        return self.active_id, _VERSION + nonce + self._keys[self.active_id].encrypt(nonce, plaintext, aad)

    def encrypt_bound(self, plaintext: bytes, aad_of: Callable[[str], bytes]) -> tuple[str, bytes]:
        """Encrypt with the active key under associated data that names that key (``aad_of(key id)``)."""
        key_id = self.active_id
        nonce = os.urandom(_NONCE)
        return key_id, _VERSION + nonce + self._keys[key_id].encrypt(nonce, plaintext, aad_of(key_id))

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        aes = self._keys.get(key_id)
        if aes is None:
            raise DataKeyError(f"row encrypted with key id {key_id!r}, which is not in the keyring {list(self.ids)}")
        if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
            raise DataKeyError("encrypted blob is truncated or of an unknown format version")
        try:
            return aes.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], aad)
        except InvalidTag as exc:
            raise DataKeyError(f"encrypted blob (key id {key_id}) failed authentication: tampered or moved") from exc

    def lookup_hashes(self, value: bytes) -> dict[str, str]:
        """HMAC-SHA256 of ``value`` under every data key's derived hashing key: key id -> hex digest. Store the
        active key's; look up by all of them (rows hashed before a rotation still match)."""
        return {kid: hmac.new(mk, value, hashlib.sha256).hexdigest() for kid, mk in self._mac_keys.items()}

    def encrypt_vector(self, vec: FloatArray, aad: bytes) -> tuple[str, bytes]:
        return self.encrypt(encode_vector(vec), aad)

    def decrypt_vector(self, key_id: str, blob: bytes, aad: bytes) -> FloatArray:
        return decode_vector(self.decrypt(key_id, blob, aad))


def encode_vector(vec: FloatArray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def decode_vector(data: bytes) -> FloatArray:
    if len(data) % 4:
        raise DataKeyError(f"decrypted vector of {len(data)} bytes is not a float32 array")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def _read_key_file(path: Path) -> list[bytes]:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="ascii").splitlines()]
    except OSError as exc:
        raise DataKeyError(f"cannot read data key file {path}: {exc.strerror}") from exc
    keys = [_parse_key(ln, str(path)) for ln in lines if ln and not ln.startswith("#")]
    if not keys:
        raise DataKeyError(f"data key file {path} holds no key; expected one base64 key a line")
    return keys


def _write_new_key_file(path: Path, keys: Sequence[bytes], *, exclusive: bool = False) -> bool:
    """Write atomically (0600). ``exclusive``: only if ``path`` does not exist yet; False if it did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write("# voiceauth data keys: base64, the first encrypts, all decrypt. Keep secret.\n")
        for k in keys:
            fh.write(base64.b64encode(k).decode("ascii") + "\n")
    if not exclusive:
        os.replace(tmp, path)
        return True
    try:
        os.link(tmp, path)  # atomic and fails if another process created the key first
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def add_key_to_file(path: Path) -> str:
    """Put a fresh key in front of the key file (the new active key); older keys stay for decryption."""
    old = _read_key_file(path) if path.exists() else []
    new = generate_key()
    _write_new_key_file(path, [new, *old])
    return key_id_of(new)


def key_file_path(settings: Settings) -> Path:
    """The key file this configuration uses (``data_key_file`` or the generated dev file)."""
    return settings.data_key_file or settings.resolved_data_dir / KEY_FILE_NAME


def load_keyring(settings: Settings) -> Keyring:
    """The data keys from settings: ``data_key``, else ``data_key_file``, else (dev only) a generated file."""
    if settings.data_key is not None:
        parts = [p for p in settings.data_key.get_secret_value().split(",") if p.strip()]
        return Keyring([_parse_key(p, "VOICEAUTH_DATA_KEY") for p in parts])
    if settings.data_key_file is not None:
        return Keyring(_read_key_file(settings.data_key_file))
    path = settings.resolved_data_dir / KEY_FILE_NAME
    if path.exists():
        return Keyring(_read_key_file(path))
    if not settings.generate_data_key:
        raise ConfigError(
            "no data key configured: set VOICEAUTH_DATA_KEY (base64 of 32 bytes) or VOICEAUTH_DATA_KEY_FILE; "
            "generate_data_key is off, as it should be in production"
        )
    if _write_new_key_file(path, [generate_key()], exclusive=True):
        log.warning("generated a development data key file at %s; configure a managed key in production", path)
    return Keyring(_read_key_file(path))
