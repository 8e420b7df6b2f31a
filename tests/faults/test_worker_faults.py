"""Worker and database faults under load, against real ``voiceauth serve`` processes (real model, loopback).

- kill -9 one of two workers in the middle of enrolments and calls: the other keeps serving; after a restart the
  invariants hold (no half-written voiceprint, the audit chain verifies); then SIGTERM drains a worker: its
  in-flight call still gets its decision, new calls are refused, ``/readyz`` says 503, the process shuts down.
- restart PostgreSQL during load (a private server in a temp dir, never the shared one on :5432): requests
  during the outage get 503 problem documents or succeed (connect retried with backoff), calls end with one
  decision or a clean close, and the service recovers without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.load.client import UploadLog, play_call, register, upload
from benchmarks.load.cluster import Cluster
from benchmarks.load.pgtemp import PrivatePostgres, private_postgres
from benchmarks.load.scenario import (
    FSDD_SPEAKERS,
    LoadConfig,
    LoadResult,
    SpeechPool,
    check_invariants,
    enrol_all,
    run_load,
)
from voiceauth.store.testing import PostgresUnavailable, postgres_scratch_schema

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture
def cluster(pg_database: str, tmp_path: Path) -> Iterator[Cluster]:
    """Two workers on a fresh schema of the session's scratch database (each test starts from an empty store) and a
    fresh prompt folder shared by both, as the workers of one host share theirs: both make the prompts at once."""
    env = {"VOICEAUTH_IVR_PROMPT_DIR": str(tmp_path / "prompts")}
    with (
        postgres_scratch_schema(pg_database, prefix="faults") as url,
        Cluster.start(url, tmp_dir=tmp_path, env=env) as c,
    ):
        yield c


async def _enrol_new(cluster: Cluster, pool: SpeechPool, refs: list[str], out: list[UploadLog]) -> None:
    """Two utterances for each of ``refs`` (registered already), spread over the workers."""
    ws = [(w.name, w.url) for w in cluster.workers]
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(i: int, ref: str) -> None:
            for j in range(2):
                voice = FSDD_SPEAKERS[i % len(FSDD_SPEAKERS)]
                out.append(
                    await upload(client, "enroll", ws[(i + j) % 2], ref, cluster.keys.telephony, pool.take(voice))
                )

        await asyncio.gather(*(one(i, r) for i, r in enumerate(refs)))


def test_kill_9_mid_load_then_restart_and_sigterm_drain(cluster: Cluster, fsdd_dir: Path) -> None:
    pool = SpeechPool(fsdd_dir)
    result = LoadResult(LoadConfig(calls=4, concurrency=4, verifies=2, call_strings=1, lockout_attempts=0))
    asyncio.run(enrol_all(cluster, pool, result))
    w1, w2 = cluster.workers
    new_refs = [f"k{i}" for i in range(6)]

    async def with_kill() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            for ref in new_refs:
                assert (await register(client, (w2.name, w2.url), ref, cluster.keys.telephony)).status == 201

        async def killer() -> None:
            await asyncio.sleep(2.0)
            await asyncio.to_thread(w1.kill)

        await asyncio.gather(
            run_load(cluster, pool, result.config, result), _enrol_new(cluster, pool, new_refs, result.enrol), killer()
        )

    asyncio.run(with_kill())
    assert not w1.alive()
    served = [c for c in result.calls if c.worker == "w2"]
    # every call on the surviving worker ends with exactly one decision and a normal close
    detail = [(c.error, c.decisions, c.close_code, c.time_to_decision_s) for c in served]
    assert served and all(len(c.decisions) == 1 and c.close_code == 1000 and not c.error for c in served), detail
    on_w2 = [u for u in result.enrol if u.worker == "w2" and u.speaker in new_refs]
    assert on_w2 and all(u.status == 200 for u in on_w2), [(u.status, u.body) for u in on_w2]
    lost = sum(u.status is None for u in result.enrol) + sum(not c.clean for c in result.calls)
    violations = check_invariants(cluster, result, unknown_ok=True, killed=frozenset({"w1"}))
    assert not violations, violations

    # restart: the same invariants hold, and both workers serve again
    cluster.restart(0)
    after = LoadResult(LoadConfig(calls=2, concurrency=2, verifies=2, call_strings=1, lockout_attempts=0))
    asyncio.run(run_load(cluster, pool, after.config, after))
    assert all(c.clean and len(c.decisions) == 1 for c in after.calls) and {c.worker for c in after.calls} == {
        "w1",
        "w2",
    }
    assert all(u.status == 200 for u in after.verifies), [u.body for u in after.verifies]
    after.enrol = result.enrol
    assert not check_invariants(cluster, after, unknown_ok=True)

    # SIGTERM on w2 during a call: the call finishes with its decision, new calls are refused, exit status 0
    async def drain() -> tuple[object, object, int | None, int]:
        call = asyncio.create_task(
            play_call(
                "l16", (w2.name, w2.url), pool.take("george"), "george", genuine=True, api_key=cluster.keys.telephony
            )
        )
        await asyncio.sleep(1.5)
        assert w2.proc is not None
        w2.proc.terminate()
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=5) as client:
            ready = (await client.get(w2.url + "/readyz")).status_code
        refused = await play_call(
            "twilio",
            (w2.name, w2.url),
            pool.take("lucas"),
            "lucas",
            genuine=True,
            api_key="",
            tenant=cluster.keys.tenant,
            twilio_token=cluster.keys.twilio,  # signed: refused for the drain, not for its credentials
        )
        done = await call
        code = await asyncio.to_thread(w2.proc.wait, 60)
        return done, refused, code, ready

    done, refused, code, ready = asyncio.run(drain())
    assert ready == 503
    assert getattr(refused, "error", "").startswith("refused") and not getattr(refused, "decisions", None)
    assert getattr(done, "decisions", None) in (["ACCEPT"], ["REJECT"]) and getattr(done, "close_code", None) == 1000
    # uvicorn re-raises the signal it handled once shut down, so the status is "terminated by SIGTERM" (-15)
    assert code in (0, -15) and "drain complete" in w2.log_text() and "Finished server process" in w2.log_text()
    assert cluster.store.verify_audit_chain().ok
    print(f"kill -9: {lost} in-flight operations lost on the killed worker, none half-written")


def test_postgres_restart_during_load(tmp_path: Path, fsdd_dir: Path) -> None:
    try:
        with private_postgres() as pg:
            _postgres_restart(pg, tmp_path, fsdd_dir)
    except PostgresUnavailable as exc:
        pytest.skip(f"cannot run a private PostgreSQL for the restart test: {exc}")


def _postgres_restart(pg: PrivatePostgres, tmp_path: Path, fsdd_dir: Path) -> None:
    with Cluster.start(pg.url, tmp_dir=tmp_path, workers=1) as cluster:
        pool = SpeechPool(fsdd_dir)
        result = LoadResult(LoadConfig(calls=4, concurrency=4, verifies=4, call_strings=1, lockout_attempts=0))
        asyncio.run(enrol_all(cluster, pool, result))
        w = cluster.workers[0]
        seen: dict[str, int] = {}

        async def restart_db() -> None:
            await asyncio.sleep(1.5)
            await asyncio.to_thread(pg.stop, "fast")
            async with httpx.AsyncClient(timeout=30) as client:
                seen["readyz_down"] = (await client.get(w.url + "/readyz")).status_code
            await asyncio.sleep(1.0)
            await asyncio.to_thread(pg.start)

        async def load() -> None:
            await asyncio.gather(run_load(cluster, pool, result.config, result), restart_db())

        asyncio.run(load())
        assert seen["readyz_down"] == 503
        for u in result.verifies:  # succeeded, or refused with a problem document: never a 500
            assert u.status in (200, 503), (u.status, u.body)
            if u.status == 503:
                assert u.body["code"] in ("store-unavailable", "request-timeout"), u.body
        assert all(c.clean for c in result.calls), [(c.error, c.decisions, c.close_code) for c in result.calls]
        # recovered without a restart of the worker
        deadline = time.monotonic() + 30
        while not w.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        after = LoadResult(LoadConfig(calls=2, concurrency=2, verifies=2, call_strings=1, lockout_attempts=0))
        asyncio.run(run_load(cluster, pool, after.config, after))
        assert all(c.clean and len(c.decisions) == 1 for c in after.calls)
        assert all(u.status == 200 for u in after.verifies), [u.body for u in after.verifies]
        violations = check_invariants(cluster, result)
        assert not violations, violations
        print(f"PostgreSQL restart: verifications during the outage {[u.status for u in result.verifies]}")
