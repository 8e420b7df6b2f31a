"""``python -m benchmarks.load``: the long load run by hand; prints the report and the invariants as JSON.

    python -m benchmarks.load --calls 40 --concurrency 20 --verifies 20 [--database-url postgresql+psycopg://...]

Without ``--database-url`` a scratch database is created on the local PostgreSQL (127.0.0.1:5432) and dropped.
Exit status 1 when an invariant does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.load.cluster import Cluster
from benchmarks.load.scenario import LoadConfig, LoadResult, SpeechPool, check_invariants, enrol_all, run_load
from voiceauth.store.testing import postgres_scratch_database

FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fsdd"


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with postgres_scratch_database() as scratch:
        yield scratch


def run(config: LoadConfig, *, fsdd: Path, database_url: str | None, workers: int, tmp: Path) -> dict[str, object]:
    t0 = time.perf_counter()
    with _database(database_url) as url, Cluster.start(url, tmp_dir=tmp, workers=workers) as cluster:
        started = time.perf_counter() - t0
        pool = SpeechPool(fsdd)
        result = LoadResult(config)
        asyncio.run(enrol_all(cluster, pool, result))
        asyncio.run(run_load(cluster, pool, config, result))
        violations = check_invariants(cluster, result)
    return {
        "workers": workers,
        "workers_ready_s": round(started, 1),
        "enrol_wall_s": round(result.enrol_wall_s, 2),
        **result.report(),
        "invariants": violations or "all hold",
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--verifies", type=int, default=20)
    ap.add_argument("--speed", type=float, default=1.0, help="1.0 = real time")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--fsdd", type=Path, default=FSDD)
    ap.add_argument("--keep-logs", type=Path, default=None, help="Write the workers' logs into this directory.")
    args = ap.parse_args(argv)
    if not args.fsdd.is_dir():
        print(f"FSDD recordings not found at {args.fsdd}; pass --fsdd", file=sys.stderr)
        return 2
    config = LoadConfig(calls=args.calls, concurrency=args.concurrency, verifies=args.verifies, speed=args.speed)
    with tempfile.TemporaryDirectory(prefix="voiceauth-load-") as tmp:
        tmp_dir = args.keep_logs or Path(tmp)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        report = run(config, fsdd=args.fsdd, database_url=args.database_url, workers=args.workers, tmp=tmp_dir)
    print(json.dumps(report, indent=2))
    return 0 if report["invariants"] == "all hold" else 1


if __name__ == "__main__":
    raise SystemExit(main())
