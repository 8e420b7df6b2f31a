"""Challenges: CSPRNG digits, hashed storage, matching with and without the one-substitution tolerance, single use
across workers on SQLite and PostgreSQL (one conditional UPDATE), expiry."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from voiceauth.errors import ChallengeExpired, ChallengeUnknown, ChallengeUsed, ConfigError
from voiceauth.liveness.challenges import candidates, new_digits
from voiceauth.liveness.store import challenge_length, issue_challenge, use_challenge
from voiceauth.store.db import create_db_engine
from voiceauth.store.models import Challenge
from voiceauth.store.repo import Store
from voiceauth.store.testing import FakeClock, test_keyring


def test_digits_are_random_of_the_asked_length() -> None:
    draws = {new_digits(6) for _ in range(200)}
    assert all(len(d) == 6 and d.isdigit() for d in draws) and len(draws) > 190
    with pytest.raises(ConfigError, match="use 4 to 6 digits"):
        new_digits(3)


def test_candidates_exact_or_one_substitution_never_a_dropped_digit() -> None:
    assert list(candidates("1234", 4, 0)) == ["1234"]
    one = set(candidates("1234", 4, 1))
    assert len(one) == 1 + 4 * 9 and "1239" in one and "9934" not in one
    assert list(candidates("123", 4, 1)) == [] and list(candidates("12a4", 4, 1)) == []


def _stores(url: str, clock: FakeClock) -> tuple[Store, Store]:
    keyring = test_keyring()
    return Store(create_db_engine(url), keyring, clock=clock), Store(create_db_engine(url), keyring, clock=clock)


def test_single_use_across_two_workers_and_expiry(db_url: str) -> None:
    clock = FakeClock()
    a, b = _stores(db_url, clock)
    try:
        with a.transaction() as tx:
            t = tx.get_or_create_tenant("acme", actor="test")
            ch = issue_challenge(tx, t.id, "c-1", n_digits=5, ttl_s=60, actor="test")
            row = tx.session.execute(select(Challenge)).scalar_one()
            assert ch.digits not in (row.digits_hash, row.id) and row.n_digits == 5  # stored hashed
        with b.transaction() as tx:
            assert challenge_length(tx, t.id, "c-1", ch.challenge_id) == 5
            with pytest.raises(ChallengeUnknown):
                use_challenge(tx, t.id, "c-2", ch.challenge_id)  # bound to its reference
        with b.transaction() as tx:
            claimed = use_challenge(tx, t.id, "c-1", ch.challenge_id)
            assert claimed.answered_by(tx, ch.digits) and not claimed.answered_by(tx, "0" * 5 + "1")
            wrong = ch.digits[:-1] + str((int(ch.digits[-1]) + 1) % 10)
            assert not claimed.answered_by(tx, wrong) and claimed.answered_by(tx, wrong, substitutions=1)
        with a.transaction() as tx, pytest.raises(ChallengeUsed):
            use_challenge(tx, t.id, "c-1", ch.challenge_id)
        with a.transaction() as tx:
            late = issue_challenge(tx, t.id, "c-1", n_digits=4, ttl_s=60, actor="test")
        clock.advance(60)
        with b.transaction() as tx, pytest.raises(ChallengeExpired):
            use_challenge(tx, t.id, "c-1", late.challenge_id)
    finally:
        a.dispose()
        b.dispose()


def test_racing_workers_use_a_challenge_once(db_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    a, b = _stores(db_url, clock)
    try:
        with a.transaction() as tx:
            t = tx.get_or_create_tenant("acme", actor="test")
            ch = issue_challenge(tx, t.id, "c-1", n_digits=6, ttl_s=60, actor="test")
        outcomes: list[str] = []
        barrier = threading.Barrier(6)

        def answer(store: Store) -> None:
            barrier.wait()
            try:
                with store.transaction() as tx:
                    use_challenge(tx, t.id, "c-1", ch.challenge_id)
                outcomes.append("used")
            except ChallengeUsed:
                outcomes.append("refused")

        threads = [threading.Thread(target=answer, args=(s,)) for s in (a, b) * 3]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(outcomes) == ["refused"] * 5 + ["used"]
    finally:
        a.dispose()
        b.dispose()
