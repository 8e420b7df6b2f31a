"""The mixed load (streaming calls + enrolment and verification uploads + a lockout probe), its report, and the
invariants checked against the database afterwards.

Audio is real speech: FSDD digit strings (``../shared/data/fsdd``), a fresh recording for every call and upload
(the service's replay check would otherwise, rightly, refuse repeats).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf
from sqlalchemy import func, select

from benchmarks.load.client import Audio, CallLog, UploadLog, play_call, register, upload
from benchmarks.load.cluster import Cluster
from voiceauth.store.models import CallRecord, EnrollmentUtterance, Lockout, Speaker, Voiceprint

__all__ = ["FSDD_SPEAKERS", "LoadConfig", "LoadResult", "SpeechPool", "check_invariants", "enrol_all", "run_load"]

FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
LOCKOUT_REF = "lockout-target"  # enrolled with theo's voice, probed by george
FAILURES = ("REJECT", "SPOOF_SUSPECTED")
LOCKOUT_FAILURES = 5  # Settings.lockout_failures (the workers run with the default)


class SpeechPool:
    """Digit strings of one FSDD speaker: string ``i`` = digits 0-9 of recording index ``i`` (~4 s of speech)."""

    def __init__(self, fsdd: Path) -> None:
        self.fsdd = fsdd
        self._next = dict.fromkeys(FSDD_SPEAKERS, 0)

    def take(self, speaker: str, strings: int = 1) -> Audio:
        parts = []
        for _ in range(strings):
            i = self._next[speaker]
            if i >= 50:
                raise RuntimeError(f"FSDD has 50 recordings per digit; {speaker}'s are used up (fewer calls)")
            self._next[speaker] = i + 1
            parts += [sf.read(self.fsdd / f"{d}_{speaker}_{i}.wav", dtype="float32")[0] for d in range(10)]
        speech = np.concatenate(parts)
        speech *= min(0.1 / max(float(np.sqrt(np.mean(speech**2))), 1e-6), 0.9 / max(float(np.abs(speech).max()), 1e-6))
        pause = np.zeros(1600, np.float32)  # level: -20 dBFS RMS (some FSDD speakers are recorded very quietly)
        return np.concatenate([pause, speech, pause]).astype(np.float32)


@dataclass(frozen=True)
class LoadConfig:
    calls: int = 6  # streaming calls, half Twilio, half L16, alternating workers
    concurrency: int = 6  # calls in flight at once
    verifies: int = 4  # verification uploads during the calls
    call_strings: int = 2  # digit strings per call (~8 s of speech, ~10 s of audio)
    speed: float = 1.0  # 1.0 = real time
    lockout_attempts: int = 8  # impostor uploads on one identity at once, on both workers (5 failures lock)
    verify_every_s: float = 1.0  # verification uploads start this far apart


@dataclass
class LoadResult:
    config: LoadConfig
    enrol: list[UploadLog] = field(default_factory=list)
    calls: list[CallLog] = field(default_factory=list)
    verifies: list[UploadLog] = field(default_factory=list)
    lockout: list[UploadLog] = field(default_factory=list)
    load_wall_s: float = 0.0
    enrol_wall_s: float = 0.0

    def report(self) -> dict[str, Any]:
        decided = [c for c in self.calls if len(c.decisions) == 1]
        ok_verifies = [u for u in self.verifies if u.status == 200]
        decisions = len(decided) + len(ok_verifies) + sum(u.status == 200 for u in self.lockout)
        genuine_accept = sum(c.decisions == ["ACCEPT"] for c in decided if c.genuine)
        return {
            "calls": len(self.calls),
            "calls_decided": len(decided),
            "call_decisions": dict(Counter(d for c in self.calls for d in c.decisions)),
            "genuine_calls_accepted": f"{genuine_accept}/{sum(c.genuine for c in self.calls)}",
            "verify_uploads": len(self.verifies),
            "verify_decisions": dict(Counter(str(u.body.get("decision", u.status)) for u in self.verifies)),
            "enrol_uploads": len(self.enrol),
            "load_wall_s": round(self.load_wall_s, 2),
            "throughput_decisions_per_s": round(decisions / self.load_wall_s, 2) if self.load_wall_s else 0.0,
            "calls_per_s": round(len(self.calls) / self.load_wall_s, 2) if self.load_wall_s else 0.0,
            "l16_decision_latency_ms": _pcts([c.latency_ms for c in self.calls if c.latency_ms is not None]),
            "twilio_time_to_decision_s": _pcts(
                [c.time_to_decision_s for c in self.calls if c.protocol == "twilio" and c.time_to_decision_s]
            ),
            "l16_time_to_decision_s": _pcts(
                [c.time_to_decision_s for c in self.calls if c.protocol == "l16" and c.time_to_decision_s]
            ),
            "verify_upload_latency_s": _pcts([u.latency_s for u in ok_verifies]),
            "enrol_upload_latency_s": _pcts([u.latency_s for u in self.enrol if u.status == 200]),
            "errors": self.errors(),
        }

    def errors(self) -> list[str]:
        out = [f"call {c.call_id} on {c.worker}: {c.error or c.decisions}" for c in self.calls if not c.clean]
        out += [f"call {c.call_id} on {c.worker}: {c.error}" for c in self.calls if c.clean and c.error]
        for u in [*self.verifies, *self.lockout]:
            if u.status != 200:
                out.append(f"{u.kind} {u.speaker} on {u.worker}: {u.status or u.error} {u.body.get('code', '')}")
        return out


def _pcts(xs: Sequence[float | None]) -> dict[str, float]:
    vals = np.array([x for x in xs if x is not None], dtype=float)
    if vals.size == 0:
        return {"n": 0}
    r = 3 if vals.max() < 100 else 1
    return {
        "n": int(vals.size),
        "p50": round(float(np.percentile(vals, 50)), r),
        "p99": round(float(np.percentile(vals, 99)), r),
        "max": round(float(vals.max()), r),
    }


def _targets(cluster: Cluster) -> list[tuple[str, str]]:
    return [(w.name, w.url) for w in cluster.workers]


async def enrol_all(cluster: Cluster, pool: SpeechPool, result: LoadResult) -> None:
    """Register the six FSDD speakers (+ the lockout target), two utterances each, speakers in parallel across
    workers; plus uploads that must be cleanly refused (silence: 422; another speaker's voice: not accepted)."""
    ws, key = _targets(cluster), cluster.keys.telephony
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        refs = [*FSDD_SPEAKERS, LOCKOUT_REF]
        regs = await asyncio.gather(*(register(client, ws[i % len(ws)], r, key) for i, r in enumerate(refs)))
        bad = [r for r in regs if r.status != 201]
        if bad:
            raise RuntimeError(f"registration failed: {[(r.speaker, r.status, r.body) for r in bad]}")

        async def one(i: int, ref: str) -> None:
            voice = "theo" if ref == LOCKOUT_REF else ref
            for j in range(2):
                audio = pool.take(voice)
                result.enrol.append(await upload(client, "enroll", ws[(i + j) % len(ws)], ref, key, audio))
            if i < 2:  # silence: refused before anything is stored
                silence = np.zeros(8000 * 2, np.float32)
                result.enrol.append(await upload(client, "enroll", ws[i % len(ws)], ref, key, silence))
            if i == 2:  # someone else's voice on an enrolled speaker: refused (SPEAKER_MISMATCH)
                other = pool.take("george")
                result.enrol.append(await upload(client, "enroll", ws[i % len(ws)], ref, key, other))

        await asyncio.gather(*(one(i, r) for i, r in enumerate(refs)))
    result.enrol_wall_s = time.perf_counter() - t0


async def run_load(cluster: Cluster, pool: SpeechPool, config: LoadConfig, result: LoadResult) -> None:
    """Calls, verification uploads and the lockout probe at once, spread over the workers."""
    ws, keys = _targets(cluster), cluster.keys
    gate = asyncio.Semaphore(config.concurrency)
    speakers = itertools.cycle(FSDD_SPEAKERS)
    plan = [(("twilio", "l16")[i % 2], ws[(i + i // 2) % len(ws)], next(speakers)) for i in range(config.calls)]
    audio = [pool.take(spk, config.call_strings) for _, _, spk in plan]

    async def call(i: int) -> None:
        proto, w, spk = plan[i]
        async with gate:
            result.calls.append(
                await play_call(
                    proto,
                    w,
                    audio[i],
                    spk,
                    genuine=True,
                    api_key=keys.telephony,
                    speed=config.speed,
                    tenant=keys.tenant,
                    twilio_token=keys.twilio,
                )
            )

    async def verifies(client: httpx.AsyncClient) -> None:
        async def one(i: int, spk: str, audio: Audio) -> UploadLog:
            await asyncio.sleep(i * config.verify_every_s)  # spread over the run, as callers arrive
            return await upload(client, "verify", ws[i % len(ws)], spk, keys.telephony, audio)

        spks = [FSDD_SPEAKERS[(i + 3) % len(FSDD_SPEAKERS)] for i in range(config.verifies)]
        result.verifies.extend(await asyncio.gather(*(one(i, s, pool.take(s)) for i, s in enumerate(spks))))

    async def lockout(client: httpx.AsyncClient) -> None:
        # all at once on both workers: the speaker row lock orders them, so exactly LOCKOUT_FAILURES fail and
        # the rest find the identity LOCKED_OUT, whichever worker each reached
        probes = [pool.take("george") for _ in range(config.lockout_attempts)]
        jobs = [upload(client, "verify", ws[i % len(ws)], LOCKOUT_REF, keys.security, p) for i, p in enumerate(probes)]
        result.lockout.extend(await asyncio.gather(*jobs))

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(call(i) for i in range(config.calls)), verifies(client), lockout(client))
    result.load_wall_s = time.perf_counter() - t0


def check_invariants(
    cluster: Cluster, result: LoadResult, *, unknown_ok: bool = False, killed: frozenset[str] = frozenset()
) -> list[str]:
    """What must hold after a run (empty list: all hold). ``unknown_ok``: uploads that got no HTTP answer (a
    killed worker) may or may not have been stored, but whatever was stored must be whole. Calls on ``killed``
    workers may have dropped without a close frame (the process died), but never got two decisions."""
    bad: list[str] = []
    store = cluster.store
    for c in result.calls:
        if len(c.decisions) > 1:
            bad.append(f"call {c.call_id} got {len(c.decisions)} decisions: {c.decisions}")
        elif not c.clean and c.worker not in killed:
            bad.append(f"call {c.call_id} ended without a decision or a clean close: {c.error}")
    with store.transaction() as tx:
        tenant = tx.tenant(cluster.keys.tenant)
        for spk in tx.session.execute(select(Speaker).where(Speaker.tenant_id == tenant.id)).scalars():
            logs = [u for u in result.enrol if u.speaker == spk.external_ref]
            accepted = sum(u.status == 200 and bool(u.body.get("accepted")) for u in logs)
            unknown = sum(u.status is None for u in logs)
            rows = tx.session.execute(
                select(func.count()).select_from(EnrollmentUtterance).where(EnrollmentUtterance.speaker_id == spk.id)
            ).scalar_one()
            if not (accepted <= rows <= accepted + (unknown if unknown_ok else 0)):
                bad.append(f"speaker {spk.external_ref}: {rows} utterance rows, client saw {accepted} accepted")
            utts = tx.enrollment_utterances(spk)  # decrypts every row: a torn row would fail here
            vp = tx.voiceprint(spk)
            if vp is not None and vp.n_utterances != len(utts):
                bad.append(f"speaker {spk.external_ref}: voiceprint of {vp.n_utterances} utterances, {len(utts)} rows")
            last = [u for u in logs if u.status == 200]
            if last and bool(last[-1].body.get("enrolled")) != (vp is not None) and not unknown:
                bad.append(f"speaker {spk.external_ref}: client saw enrolled={last[-1].body.get('enrolled')}")
        target = tx.require_speaker(tenant.id, LOCKOUT_REF)
        lock = tx.session.get(Lockout, target.id)
        answered = [u for u in result.lockout if u.status == 200]
        failures = [u for u in answered if u.body.get("decision") in FAILURES]
        if result.lockout:
            workers = {u.worker for u in failures}
            if lock is None or lock.consecutive_failures != len(failures):
                got = None if lock is None else lock.consecutive_failures
                bad.append(f"lockout counted {got} failures; clients saw {len(failures)} (on {sorted(workers)})")
            locked = sum(u.body.get("decision") == "LOCKED_OUT" for u in answered)
            if len(failures) != min(LOCKOUT_FAILURES, len(answered)) or locked != len(answered) - len(failures):
                seen = dict(Counter(str(u.body.get("decision")) for u in answered))
                bad.append(f"{len(answered)} attempts on one identity got {seen}; lockout is at {LOCKOUT_FAILURES}")
        vps = tx.session.execute(select(func.count()).select_from(Voiceprint)).scalar_one()
        if vps < len(FSDD_SPEAKERS) and not unknown_ok:
            bad.append(f"only {vps} voiceprints stored")
    bad += _stored_call_outcomes(cluster, result, killed)
    chain = store.verify_audit_chain()
    if not chain.ok:
        bad.append(f"audit chain does not verify: {chain.reason}")
    return bad


def _stored_call_outcomes(
    cluster: Cluster, result: LoadResult, killed: frozenset[str], wait_s: float = 3.0
) -> list[str]:
    """Where the IVR stores call outcomes (the ``calls`` table): one row per decided call, with the decision the
    caller was sent (the row is written as the call ends, so give it ``wait_s``). Calls on killed workers may lack
    one. Nothing to check on a build that does not store outcomes (no rows at all)."""
    decided = {c.call_id: c.decisions[0] for c in result.calls if len(c.decisions) == 1 and c.worker not in killed}
    deadline = time.monotonic() + wait_s
    while True:
        with cluster.store.transaction() as tx:
            rows = tx.session.execute(select(CallRecord.call_id, CallRecord.decision)).all()
            by_id: dict[str, str | None] = {r[0]: r[1] for r in rows}
        missing = [cid for cid in decided if cid not in by_id]
        if not by_id or not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not by_id:
        return []
    return [
        f"call {cid}: stored outcome {by_id.get(cid)!r}, sent {d}" for cid, d in decided.items() if by_id.get(cid) != d
    ]
