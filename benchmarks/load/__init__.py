"""Bounded load and fault runs against real ``voiceauth serve`` worker processes sharing one database.

- :mod:`benchmarks.load.cluster`: scratch database, keys, worker processes (start, kill -9, SIGTERM, restart).
- :mod:`benchmarks.load.client`: a light asyncio client (Twilio and L16 streams, enrolment and verification
  uploads) that logs what every call and upload got back.
- :mod:`benchmarks.load.scenario`: the mixed load, the report (throughput, p50/p99, errors) and the invariants
  checked against the database (nothing lost, nothing half-written, chain verifies, lockout shared).

``python -m benchmarks.load --calls 40`` runs the long version by hand and prints the report; ``tests/load`` runs
a quick one in the normal test run and ``tests/faults`` injects faults around it. Loopback only; every run
stops by itself (counts and timeouts are bounded).
"""
