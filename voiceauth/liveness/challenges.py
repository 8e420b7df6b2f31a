"""Liveness challenges, the pure part: fresh digits from a CSPRNG, the value that is hashed, matching, expiry.

A challenge is a random digit string (4-6 digits, ``secrets``) the caller must say, with an opaque id, single use
and a short expiry. Only a keyed hash of ``id + digits`` is stored (:func:`digest_input`), so neither a database
reader nor a log can answer it. Matching what was heard (:func:`matches`) is exact, or with ``substitutions=1``
also one substituted digit (never an inserted or dropped one); with a hash stored, the candidates are every string
within that distance (at most 9 x 6 = 54), each hashed and compared.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from voiceauth.errors import ConfigError

__all__ = [
    "MAX_DIGITS",
    "MIN_DIGITS",
    "IssuedChallenge",
    "candidates",
    "digest_input",
    "matches",
    "new_challenge_id",
    "new_digits",
]

MIN_DIGITS, MAX_DIGITS = 4, 6


@dataclass(frozen=True)
class IssuedChallenge:
    challenge_id: str
    digits: str  # shown to the caller once; never stored in clear
    expires_at: dt.datetime


def new_digits(n: int) -> str:
    """``n`` digits from the operating system's CSPRNG."""
    if not MIN_DIGITS <= n <= MAX_DIGITS:
        raise ConfigError(f"a challenge of {n} digits is not supported; use {MIN_DIGITS} to {MAX_DIGITS} digits")
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


def new_challenge_id() -> str:
    return "ch_" + secrets.token_urlsafe(18)


def digest_input(challenge_id: str, digits: str) -> bytes:
    """What is hashed (HMAC under a data key) for a challenge's digits."""
    return f"challenge\x00{challenge_id}\x00{digits}".encode()


def candidates(heard: str, n_digits: int, substitutions: int) -> Iterator[str]:
    """Digit strings accepted for ``heard``: itself, and with ``substitutions=1`` each one-digit substitution."""
    if len(heard) != n_digits or not heard.isdigit():
        return
    yield heard
    if substitutions >= 1:
        for i, d in enumerate(heard):
            for r in "0123456789":
                if r != d:
                    yield heard[:i] + r + heard[i + 1 :]


def matches(heard: str, n_digits: int, *, substitutions: int, is_answer: Callable[[str], bool]) -> bool:
    """Whether ``heard`` answers a challenge of ``n_digits`` digits; ``is_answer`` checks one candidate (by hash)."""
    return any(is_answer(c) for c in candidates(heard, n_digits, substitutions))
