"""Load against two real ``voiceauth serve`` workers sharing one scratch PostgreSQL database (loopback only).

Quick version here (a few concurrent Twilio and L16 calls, enrolment and verification uploads, a lockout probe
alternating workers); the longer one runs with ``VOICEAUTH_LOAD_LONG=1 pytest -m load_long tests/load`` or
``python -m benchmarks.load`` (prints the report). Invariants: every call gets exactly one decision or a clean
close; every enrolment is fully stored or cleanly refused (rows counted against the client's log); the audit
chain verifies; lockout counts failures made on both workers (concurrent attempts on one identity, exactly five fail).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.load.cluster import Cluster
from benchmarks.load.scenario import LoadConfig, LoadResult, SpeechPool, check_invariants, enrol_all, run_load
from voiceauth.store.testing import postgres_scratch_schema

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture
def cluster(pg_database: str, tmp_path: Path) -> Iterator[Cluster]:
    """Two workers on a fresh schema of the session's scratch database (each test starts from an empty store)."""
    with postgres_scratch_schema(pg_database, prefix="load") as url, Cluster.start(url, tmp_dir=tmp_path) as c:
        yield c


def _run(cluster: Cluster, fsdd: Path, config: LoadConfig) -> LoadResult:
    pool = SpeechPool(fsdd)
    result = LoadResult(config)
    asyncio.run(enrol_all(cluster, pool, result))
    asyncio.run(run_load(cluster, pool, config, result))
    print(json.dumps(result.report(), indent=1))  # shown with -s / on failure: the measured figures
    return result


def _assert_nothing_lost(cluster: Cluster, result: LoadResult) -> None:
    violations = check_invariants(cluster, result)
    assert not violations, "\n".join(
        violations + ["-- worker logs --", *(w.log_text()[-3000:] for w in cluster.workers)]
    )
    calls = result.calls
    assert len(calls) == result.config.calls and all(c.clean for c in calls)
    assert {c.protocol for c in calls} == {"twilio", "l16"} and {c.worker for c in calls} == {"w1", "w2"}
    assert sum(c.decisions == ["ACCEPT"] for c in calls) >= len(calls) // 2  # real model, genuine callers
    # lockout: eight impostor attempts at once on both workers; exactly five fail, the rest are LOCKED_OUT
    decisions = sorted(str(u.body.get("decision")) for u in result.lockout)
    assert decisions.count("LOCKED_OUT") == 3 and {u.worker for u in result.lockout} == {"w1", "w2"}, decisions


def test_quick_load_two_workers_nothing_lost(cluster: Cluster, fsdd_dir: Path) -> None:
    result = _run(cluster, fsdd_dir, LoadConfig(calls=4, concurrency=4, verifies=2, call_strings=1))
    _assert_nothing_lost(cluster, result)
    assert all(u.status == 200 for u in result.verifies), [(u.status, u.body) for u in result.verifies]


@pytest.mark.load_long
@pytest.mark.skipif(not os.environ.get("VOICEAUTH_LOAD_LONG"), reason="long load run: set VOICEAUTH_LOAD_LONG=1")
def test_long_load_two_workers_nothing_lost(cluster: Cluster, fsdd_dir: Path) -> None:
    result = _run(cluster, fsdd_dir, LoadConfig(calls=36, concurrency=12, verifies=18, call_strings=2))
    _assert_nothing_lost(cluster, result)
