"""PIN fallback: salted PBKDF2-SHA256 PIN hashes per (tenant, customer reference), compared in constant time.

A PIN file is JSON ``{"tenant": {"customer-ref": "pbkdf2_sha256$iterations$salt_b64$hash_b64"}}``; make entries
with :func:`hash_pin`. PINs themselves are never stored or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Protocol

from voiceauth.errors import ConfigError

__all__ = ["PinBook", "PinChecker", "hash_pin", "verify_pin"]

_ITERATIONS = 100_000


class PinChecker(Protocol):
    def check(self, tenant: str, speaker_ref: str, pin: str) -> bool: ...


def hash_pin(pin: str, *, iterations: int = _ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_pin(pin: str, encoded: str) -> bool:
    try:
        algo, iters, salt_b64, hash_b64 = encoded.split("$")
        if algo != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), base64.b64decode(salt_b64), int(iters))
        return hmac.compare_digest(digest, base64.b64decode(hash_b64))
    except ValueError:
        return False


class PinBook:
    """In-memory PIN hashes; a missing entry fails like a wrong PIN (same work, same answer)."""

    _DUMMY = hash_pin("0000", salt=b"voiceauth-dummy!")

    def __init__(self, hashes: dict[str, dict[str, str]] | None = None) -> None:
        self.hashes = {t: dict(refs) for t, refs in (hashes or {}).items()}

    @classmethod
    def from_file(cls, path: Path) -> PinBook:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"PIN file {path} is not readable JSON: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ConfigError(f"PIN file {path} must be {{tenant: {{customer_ref: hash}}}}")
        return cls(data)

    def set(self, tenant: str, speaker_ref: str, pin: str) -> None:
        self.hashes.setdefault(tenant, {})[speaker_ref] = hash_pin(pin)

    def check(self, tenant: str, speaker_ref: str, pin: str) -> bool:
        encoded = self.hashes.get(tenant, {}).get(speaker_ref)
        ok = verify_pin(pin, encoded or self._DUMMY)
        return ok and encoded is not None
