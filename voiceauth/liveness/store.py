"""The challenges table: issue a challenge, and use it once (any worker, SQLite or PostgreSQL).

A challenge is bound to a tenant and to the pseudonym of the claimed reference (issued whether or not that
reference is enrolled, so issuing reveals nothing). :func:`use_challenge` claims it with one conditional UPDATE
(``used_at IS NULL AND expires_at > now``): of two workers answering the same challenge, exactly one gets the row;
the other, and every later answer, is refused with :class:`~voiceauth.errors.ChallengeUsed`.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from voiceauth.errors import ChallengeExpired, ChallengeUnknown, ChallengeUsed
from voiceauth.liveness.challenges import IssuedChallenge, digest_input, matches, new_challenge_id, new_digits
from voiceauth.store.models import Challenge
from voiceauth.store.repo import StoreTx

__all__ = ["ClaimedChallenge", "challenge_length", "issue_challenge", "record_result", "results_since", "use_challenge"]

#: Challenge.result values
PASSED, WRONG_DIGITS, NO_DIGITS, NOT_SCORED = "passed", "wrong-digits", "no-digits", "not-scored"


@dataclass(frozen=True)
class ClaimedChallenge:
    """A challenge just claimed for one verification: checks a heard digit string against its hash."""

    challenge_id: str
    n_digits: int
    hash_key_id: str
    digits_hash: str

    def answered_by(self, tx: StoreTx, heard: str, *, substitutions: int = 0) -> bool:
        def is_answer(candidate: str) -> bool:
            got = tx.keyring.lookup_hashes(digest_input(self.challenge_id, candidate)).get(self.hash_key_id)
            return got is not None and hmac.compare_digest(got, self.digits_hash)

        return matches(heard, self.n_digits, substitutions=substitutions, is_answer=is_answer)


def issue_challenge(
    tx: StoreTx, tenant_id: int, external_ref: str, *, n_digits: int, ttl_s: float, call_id: str = "", actor: str
) -> IssuedChallenge:
    now = tx.clock()
    cid, digits = new_challenge_id(), new_digits(n_digits)
    key = tx.keyring.active_id
    row = Challenge(
        id=cid,
        tenant_id=tenant_id,
        subject=tx.pseudonym(tenant_id, external_ref),
        n_digits=n_digits,
        hash_key_id=key,
        digits_hash=tx.keyring.lookup_hashes(digest_input(cid, digits))[key],
        call_id=call_id,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl_s),
    )
    tx.session.add(row)
    tx.session.flush()
    tx.audit(
        "challenge.issue",
        actor=actor,
        tenant_id=tenant_id,
        subject=row.subject,
        details={"challenge": cid, "digits": n_digits, "call_id": call_id},
    )
    return IssuedChallenge(cid, digits, row.expires_at)


def challenge_length(tx: StoreTx, tenant_id: int, external_ref: str, challenge_id: str) -> int:
    """The number of digits of an unused, unexpired challenge (read-only: the recogniser's grammar needs it before
    the verification claims the challenge); raises like :func:`use_challenge`."""
    return _row(tx, tenant_id, external_ref, challenge_id, tx.clock()).n_digits


def use_challenge(tx: StoreTx, tenant_id: int, external_ref: str, challenge_id: str) -> ClaimedChallenge:
    """Claim the challenge for this verification, atomically; raises ChallengeUnknown / ChallengeUsed /
    ChallengeExpired (nothing is changed then)."""
    now = tx.clock()
    subject = tx.pseudonym(tenant_id, external_ref)
    res = tx.session.execute(
        update(Challenge)
        .where(
            Challenge.id == challenge_id,
            Challenge.tenant_id == tenant_id,
            Challenge.subject == subject,
            Challenge.used_at.is_(None),
            Challenge.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(res, "rowcount", 0) != 1:
        _row(tx, tenant_id, external_ref, challenge_id, now)  # raises the reason
        raise ChallengeUsed(f"challenge {challenge_id} was answered already; ask for a new challenge")
    row = _row(tx, tenant_id, external_ref, challenge_id, now, claimed=True)
    return ClaimedChallenge(row.id, row.n_digits, row.hash_key_id, row.digits_hash)


def record_result(tx: StoreTx, challenge_id: str, result: str, attempt_id: int | None) -> None:
    tx.session.execute(
        update(Challenge)
        .where(Challenge.id == challenge_id)
        .values(result=result, attempt_id=attempt_id)
        .execution_options(synchronize_session=False)
    )


def results_since(tx: StoreTx, tenant_id: int, since: dt.datetime) -> Sequence[tuple[str | None, dt.datetime, bool]]:
    """(result, expires_at, used) of the tenant's challenges issued since ``since`` (for KPIs)."""
    rows = tx.session.execute(
        select(Challenge.result, Challenge.expires_at, Challenge.used_at.is_not(None)).where(
            Challenge.tenant_id == tenant_id, Challenge.created_at >= since
        )
    ).all()
    return [(r[0], r[1], bool(r[2])) for r in rows]


def _row(
    tx: StoreTx, tenant_id: int, external_ref: str, challenge_id: str, now: dt.datetime, *, claimed: bool = False
) -> Challenge:
    row = tx.session.get(Challenge, challenge_id, populate_existing=True)
    if row is None or row.tenant_id != tenant_id or row.subject != tx.pseudonym(tenant_id, external_ref):
        raise ChallengeUnknown(
            f"no challenge {challenge_id!r} was issued for this speaker reference; ask for one with "
            "POST /v1/speakers/{ref}/challenges"
        )
    if claimed:
        return row
    if row.used_at is not None:
        raise ChallengeUsed(f"challenge {challenge_id} was answered already; ask for a new challenge")
    if row.expires_at <= now:
        raise ChallengeExpired(f"challenge {challenge_id} expired at {row.expires_at.isoformat()}; ask for a new one")
    return row
