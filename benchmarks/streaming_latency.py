"""Streaming verification benchmark: decision latency after the deciding speech, and concurrent calls sustained.

    python -m benchmarks.streaming_latency                       # both parts, writes benchmarks/results/streaming.md
    python -m benchmarks.streaming_latency --levels 1,5,10,20    # choose the concurrency levels

Part 1 (in process, one call at a time): FSDD digit strings (8 kHz mu-law, 100 ms blocks, as the IVR session feeds
them) through :class:`voiceauth.streaming.StreamingVerifier` claiming ``george``; for each call the time from the
arrival of the block that made the decision possible to the decision, next to SpeechBrain's own reference pipeline
embedding the same speech in the same run (the ratio is the comparable figure across machines).

Part 2 (over the network): the IVR app with the real engine in a separate process (uvicorn, ``ivr_workers`` threads),
N simulated L16 calls in real time from this process, their starts spread over one call length (so N calls
are in progress at once, arriving as a steady stream would). Latency per call = when
the decision arrived minus when the audio frame at the server's ``decided_at_ms`` was sent. The sustained figure is
the largest N whose p99 stays within 300 ms with every call decided.

``--liveness``: the server runs the IVR's liveness step (``ivr_liveness=challenge``); each call waits for its
challenge and says the digits asked from new FSDD recordings of its speaker (lucas is the enrolled, genuine
caller: the recogniser hears him best, benchmarks/results/digits.md); the decision comes after the answer's
closing silence. ``--answer after-prompt`` (the default) is a real call: the caller's line carries line noise from
the first frame, as a telephony stream does, and the caller answers once the IVR's prompts (greeting, instruction,
the digits; the outbound audio the server sent) have played, plus 0.3 s; ``--answer barge-in`` answers as soon as
the challenge event arrives (the cheapest call, the hardest load). Without ``--liveness`` the server runs the
passive flow.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
STRINGS = ("3141592653", "2718281828", "1618033988", "1414213562")
TENANT = "bench"
_NOISE = np.random.default_rng(11).normal(0.0, 1e-3, 160).astype(np.float32)  # -60 dBFS line noise, 20 ms
_NOISE_FRAMES = 3000  # 60 s of open line at most before a call's answer
KEY = "bench-telephony-key"


#: how an impostor's call is refused as expected (CHALLENGE_FAILED: the digits were not heard, so no voice decision)
_IMPOSTOR_REFUSALS = ("REJECT", "CHALLENGE_FAILED")


def _as_expected(decision: str | None, *, genuine: bool) -> bool:
    return decision == "ACCEPT" if genuine else decision in _IMPOSTOR_REFUSALS


def digits(speaker: str, ds: str, index: int) -> np.ndarray:
    return np.concatenate([sf.read(FSDD / f"{d}_{speaker}_{index}.wav", dtype="float32")[0] for d in ds])


class Takes:
    """A new recording for every call: the service's replay check (on, as in production) rightly refuses audio it
    has heard before, even a single reused digit recording spliced into another string. A call of a speaker plays
    digit string ``STRINGS[k % 4]`` from that speaker's recordings ``index`` = 2, 3, ... 49 (each index once;
    0 and 1 enrol george)."""

    FIRST, LAST = 2, 49

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def call(self, speaker: str) -> tuple[np.ndarray, int]:
        """(audio, recording index) of the speaker's next call."""
        k = self.used.get(speaker, 0)
        if self.FIRST + k > self.LAST:
            raise RuntimeError(f"{speaker}'s FSDD recordings are used up; run fewer or smaller levels")
        self.used[speaker] = k + 1
        return digits(speaker, STRINGS[k % len(STRINGS)], self.FIRST + k), self.FIRST + k


def _single_thread() -> None:
    try:
        ctypes.CDLL(None).omp_set_num_threads(1)
    except (AttributeError, OSError):
        pass


def _setup(home: Path, engine: Any, antispoof: str = "off", liveness: bool = False) -> Any:
    from voiceauth.config import Settings
    from voiceauth.pipeline import Pipeline
    from voiceauth.scoring.shipped import COHORT_DIR

    scoring: Literal["cohort", "cosine"] = "cohort" if (COHORT_DIR / "MANIFEST.json").is_file() else "cosine"
    settings = Settings(
        home=home,
        scoring_backend=scoring,
        ivr_tenant=TENANT,
        twilio_open_tenants=[TENANT],  # loopback benchmark: unsigned Twilio, as the embedded demo
        enroll_min_speech_s=6.0,
        lockout_failures=1_000_000,  # impostor after impostor must not lock the claimed identity mid-benchmark
        lockout_disable_failures=1_000_001,
        antispoof_mode=antispoof,  # type: ignore[arg-type]  # part 2: --antispoof (default enforce)
        ivr_liveness="challenge" if liveness else "off",
    )
    pipe = Pipeline.from_settings(settings, engine=engine)
    who = _genuine(liveness)
    pipe.register(TENANT, who, consent_method="bench", consent_text_version="v1", actor="bench")
    enrol = np.concatenate([digits(who, "0123456789", i) for i in (0, 1)])
    assert pipe.frontend is not None
    res = pipe.enroll(TENANT, who, pipe.frontend.from_samples(enrol, 8000), actor="bench")  # type: ignore[attr-defined]
    assert res.enrolled, res
    return settings, pipe


# -- part 1 -----------------------------------------------------------------------------------------------------
def single_call_latency(n_per_speaker: int = 2) -> dict[str, Any]:
    from models.fetch import ensure_model
    from voiceauth.antispoof.replay import ReplayPolicy
    from voiceauth.audio.codecs import mulaw_encode
    from voiceauth.audio.stream import StreamingFrontEnd
    from voiceauth.config import Settings
    from voiceauth.embedding.factory import create_engine
    from voiceauth.embedding.reference import load_reference
    from voiceauth.streaming import StreamingPolicy, StreamingVerifier

    _single_thread()
    model_dir = ensure_model(Settings())
    engine = create_engine(Settings())  # the engine the service runs (backend "auto")
    reference = load_reference(model_dir)
    settings, pipe = _setup(Path(tempfile.mkdtemp()), engine)
    policy = StreamingPolicy.from_settings(settings)
    rows = []
    for speaker in SPEAKERS:
        for k in range(n_per_speaker):
            audio = digits(speaker, STRINGS[k], 45 + k)
            fe = StreamingFrontEnd(settings, sample_rate=8000, fmt="mulaw")
            sv = StreamingVerifier(
                frontend=fe,
                engine=engine,
                verifier=pipe.verifier,
                tenant=TENANT,
                speaker_ref="george",
                policy=policy,
                replay=ReplayPolicy.from_settings(settings),  # as the IVR runs it
            )
            data, decided = mulaw_encode(audio), None
            for i in range(0, len(data), 800):
                decided = sv.feed(data[i : i + 800])
                if decided is not None:
                    break
            decided = decided or sv.finish()
            speech = fe.speech()
            t = time.perf_counter()
            reference.encode_batch(torch.from_numpy(speech).unsqueeze(0))
            ref_ms = (time.perf_counter() - t) * 1000
            rows.append(
                {
                    "speaker": speaker,
                    "decision": decided.decision.value,
                    "speech_s": decided.speech_seconds,
                    "early": decided.early,
                    "latency_ms": decided.compute_ms,
                    "reference_embed_ms": ref_ms,
                    "evaluations": sv.evaluations,
                }
            )
    lat = [float(r["latency_ms"]) for r in rows]
    ref = [float(r["reference_embed_ms"]) for r in rows]
    return {
        "rows": rows,
        "median_ms": statistics.median(lat),
        "p95_ms": float(np.percentile(lat, 95)),
        "reference_median_ms": statistics.median(ref),
        "ratio": statistics.median(lat) / statistics.median(ref),
        "policy": policy,
    }


# -- part 2 -----------------------------------------------------------------------------------------------------
def _genuine(liveness: bool) -> str:
    """The enrolled speaker every call claims: george, or lucas with liveness (the recogniser hears him best)."""
    return "lucas" if liveness else "george"


def _speakers(liveness: bool) -> tuple[str, ...]:
    """The six speakers with the genuine one first (call i is genuine when i % 6 == 0)."""
    g = _genuine(liveness)
    return (g, *(s for s in SPEAKERS if s != g))


def _serve(port_q: Any, workers: int, feed_ms: int, backend: str, antispoof: str, liveness: bool = False) -> None:
    import uvicorn
    from fastapi import FastAPI

    from ivr.routes import router
    from ivr.service import IvrService, KeyInfo, StaticKeys
    from voiceauth.config import Settings
    from voiceauth.embedding.factory import create_engine

    engine = create_engine(Settings(backend=backend))  # type: ignore[arg-type]
    settings, pipe = _setup(Path(tempfile.mkdtemp()), engine, antispoof, liveness)
    settings = settings.model_copy(update={"ivr_workers": workers, "ivr_idle_timeout_s": 30.0, "ivr_feed_ms": feed_ms})
    countermeasure = None
    if antispoof != "off":
        from voiceauth.antispoof.countermeasure import create_countermeasure

        countermeasure = create_countermeasure(settings)
    ivr = IvrService(
        settings,
        engine=engine,
        verifier=pipe.verifier,
        keys=StaticKeys({KEY: KeyInfo(TENANT, "telephony")}),
        countermeasure=countermeasure,
    )
    app = FastAPI()
    app.include_router(router)
    app.state.ivr = ivr
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    port_q.put(port)
    # as voiceauth.api.server runs it: no permessage-deflate (audio does not compress)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=1 << 20, ws_per_message_deflate=False
    )


class _Call:
    """One simulated L16 call: frames pre-encoded, sent by the shared ticker, decisions read by its own task."""

    def __init__(
        self,
        i: int,
        frames: list[bytes],
        genuine: bool,
        start_at: float,
        answer: Any = None,
        claim: str = "george",
        after_prompt: bool = False,
    ) -> None:
        self.i, self.frames, self.genuine, self.start_at = i, frames, genuine, start_at
        self.answer = answer  # liveness: digits -> frames of the caller saying them (frames come with the challenge)
        self.claim = claim
        self.after_prompt = after_prompt  # liveness: line noise until the prompts have played, then the answer
        self.prompt_bytes = 0  # outbound audio received (L16 8 kHz: 16000 bytes a second)
        self.digits: str | None = None  # the challenge, once it arrived
        self.answering = False
        if answer is not None and after_prompt:
            from voiceauth.audio.codecs import l16_encode

            self.frames = [l16_encode(_NOISE)] * _NOISE_FRAMES  # the open line while the IVR speaks
        self.ws: Any = None
        self.sent = 0
        self.sent_at: list[float] = []
        self.done = False  # stop sent (or connection lost)
        self.decision: str | None = None
        self.latency_ms: float | None = None
        self.error: str | None = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self, url: str) -> None:
        import websockets

        await asyncio.sleep(max(0.0, self.start_at - time.perf_counter()))
        try:
            self.ws = await websockets.connect(url + "/v1/streams/l16", additional_headers={"X-API-KEY": KEY})
            meta = {"content-type": "audio/l16;rate=8000", "call_id": f"bench-{self.i}", "speaker_id": self.claim}
            await self.ws.send(json.dumps(meta))
            self.start_at = time.perf_counter()
            self.reader = asyncio.create_task(self.read())
        except Exception as exc:  # counted as an error of this call
            self.error, self.done = type(exc).__name__, True

    async def read(self) -> None:
        try:
            async for msg in self.ws:
                if isinstance(msg, bytes):
                    self.prompt_bytes += len(msg)
                if isinstance(msg, str):
                    m = json.loads(msg)
                    if m.get("event") == "challenge" and self.answer is not None and self.digits is None:
                        self.digits = m["digits"]
                        if not self.after_prompt:  # barge-in: the answer starts now, the call's first frame
                            self.frames, self.answering = self.answer(m["digits"]), True
                            self.start_at = time.perf_counter()
                    if m.get("event") == "decision" and self.decision is None:
                        self.decision = m["decision"]
                        at = int(m.get("decided_at_ms") or 0)
                        idx = min(len(self.sent_at) - 1, max(0, -(-at // 20) - 1))
                        self.latency_ms = (time.perf_counter() - self.sent_at[idx]) * 1000 if self.sent_at else None
        except Exception as exc:
            if self.decision is None:
                self.error = type(exc).__name__

    async def tick(self, now: float) -> None:
        """Send every frame due by ``now`` (real-time pacing, 20 ms frames), then ``stop``."""
        if self.ws is None or self.done or not self.frames:
            return
        if self.after_prompt and self.digits is not None and not self.answering:
            if now - self.start_at >= self.prompt_bytes / 16000 + 0.3:  # the prompts have played
                self.frames, self.answering = self.frames[: self.sent] + self.answer(self.digits), True
        due = min(len(self.frames), int((now - self.start_at) / 0.02) + 1)
        try:
            while self.sent < due:
                self.sent_at.append(time.perf_counter())
                await self.ws.send(self.frames[self.sent])
                self.sent += 1
            if self.sent == len(self.frames):
                await self.ws.send(json.dumps({"event": "stop"}))
                self.done = True
        except Exception as exc:
            self.error, self.done = self.error or type(exc).__name__, True


async def _level(
    url: str,
    n: int,
    audios: list[tuple[np.ndarray, bool]],
    answers: list[Any] | None = None,
    claim: str = "george",
    after_prompt: bool = False,
    span_s: float | None = None,
) -> dict[str, Any]:
    """N calls (call i plays ``audios[i % len(audios)]``, or with liveness answers its challenge with
    ``answers[i]``), starts spread over one call length, all paced by one 20 ms ticker in this one process."""
    from voiceauth.audio.codecs import l16_encode

    encoded = [(l16_encode(a), g) for a, g in audios]
    span = span_s or float(np.mean([a.size for a, _ in audios])) / 8000  # liveness: the measured call length
    t0 = time.perf_counter() + 0.2
    calls = []
    for i in range(n):
        pcm, genuine = encoded[i % len(encoded)]
        frames = [] if answers else [pcm[j : j + 320] for j in range(0, len(pcm), 320)]
        answer = answers[i] if answers else None
        calls.append(_Call(i, frames, genuine, t0 + i * span / max(n, 1), answer, claim, after_prompt))
    cpu0 = time.process_time()
    openers = [asyncio.create_task(c.open(url)) for c in calls]
    tick = time.perf_counter()
    deadline = time.perf_counter() + 120.0  # liveness: a call never challenged must not hang the level
    while not all(c.done for c in calls) and time.perf_counter() < deadline:
        now = time.perf_counter()
        for c in calls:
            await c.tick(now)
        tick += 0.02
        await asyncio.sleep(max(0.0, tick - time.perf_counter()))
    await asyncio.gather(*openers)
    readers = [c.reader for c in calls if c.reader is not None]
    if readers:
        await asyncio.wait(readers, timeout=20.0)
    for c in calls:
        if c.ws is not None:
            await c.ws.close()
    client_cpu = time.process_time() - cpu0
    lat = [c.latency_ms for c in calls if c.latency_ms is not None]
    decided = sum(1 for c in calls if c.decision is not None)
    correct = sum(1 for c in calls if _as_expected(c.decision, genuine=c.genuine))
    return {
        "calls": n,
        "decided": decided,
        "correct": correct,
        "genuine_accepted": sum(1 for c in calls if c.genuine and c.decision == "ACCEPT"),
        "genuine": sum(1 for c in calls if c.genuine),
        "errors": sum(1 for c in calls if c.error is not None and c.decision is None),
        "spoof_suspected": sum(1 for c in calls if c.decision == "SPOOF_SUSPECTED"),  # replay check: expected 0
        "decisions": [(c.i, c.decision) for c in calls],
        "p50_ms": float(np.percentile(lat, 50)) if lat else None,
        "p95_ms": float(np.percentile(lat, 95)) if lat else None,
        "p99_ms": float(np.percentile(lat, 99)) if lat else None,
        "max_ms": max(lat) if lat else None,
        "client_cpu_s_per_call": client_cpu / n,
        "call_s": float(np.mean([c.sent * 0.02 for c in calls])),  # audio each call sent, on average
    }


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def concurrency(
    levels: list[int],
    workers: int,
    feed_ms: int,
    backend: str = "auto",
    antispoof: str = "off",
    greeting_s: float = 0.0,
    liveness: bool = False,
    after_prompt: bool = False,
) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(q, workers, feed_ms, backend, antispoof, liveness), daemon=False)
    # not daemonic: the server starts its digit recogniser's worker process, as in production
    proc.start()
    try:
        port = q.get(timeout=300)
        time.sleep(2.0)
        url = f"ws://127.0.0.1:{port}"
        takes = Takes()
        line = np.random.default_rng(7).normal(0.0, 1e-3, int(greeting_s * 8000)).astype(np.float32)

        def audios_for(n: int) -> tuple[list[tuple[np.ndarray, bool]], list[str]]:
            """n calls cycling through the six speakers, each call recordings no earlier call played."""
            out, names = [], []
            for i in range(n):
                speaker = _speakers(liveness)[i % len(SPEAKERS)]
                audio, index = takes.call(speaker)
                # the caller listens to the IVR's greeting first: line noise (-60 dBFS) before speech
                out.append((np.concatenate([line, audio]), speaker == _genuine(liveness)))
                names.append(f"{speaker}/{index}")
            return out, names

        def answers_for(names: list[str]) -> list[Any] | None:
            """Liveness: each call's speaker says the digits asked, from the recordings of its own take."""
            if not liveness:
                return None
            from voiceauth.audio.codecs import l16_encode

            def say(speaker: str, index: int) -> Any:
                def frames(ds: str) -> list[bytes]:
                    gap = np.zeros(1600, np.float32)
                    parts = [np.concatenate([digits(speaker, d, index), gap]) for d in ds]
                    pcm = l16_encode(np.concatenate([*parts, np.zeros(8000 * 2, np.float32)]))
                    return [pcm[j : j + 320] for j in range(0, len(pcm), 320)]

                return frames

            return [say(name.split("/")[0], int(name.split("/")[1])) for name in names]

        claim = _genuine(liveness)
        warm, warm_names = audios_for(2)
        warmed = asyncio.run(_level(url, 2, warm, answers_for(warm_names), claim, after_prompt))  # first calls
        span_s = warmed["call_s"] if liveness else None  # a challenged call lasts its prompts and answer
        out = []
        for n in levels:
            assert proc.pid is not None
            audios, names = audios_for(n)
            load = os.getloadavg()[0]
            cpu0 = _cpu_s(proc.pid)
            row = asyncio.run(_level(url, n, audios, answers_for(names), claim, after_prompt, span_s))
            row["server_cpu_s_per_call"] = (_cpu_s(proc.pid) - cpu0) / n
            row["call_audio_s"] = row["call_s"] if liveness else float(np.mean([a.size / 8000 for a, _ in audios]))
            decisions = row.pop("decisions")
            row["wrong"] = [f"{names[i]}: {d}" for i, d in decisions if not _as_expected(d, genuine=i % 6 == 0)]
            # an impostor's recording with too little speech is refused, not accepted: no error of the verifier
            row["false_accepts"] = sum(1 for i, d in decisions if i % 6 != 0 and d == "ACCEPT")
            row["false_rejects"] = sum(1 for i, d in decisions if i % 6 == 0 and d != "ACCEPT")
            row["load_avg_1m"] = load
            print(f"  {n:3d} calls: {row}", flush=True)
            out.append(row)
            time.sleep(3.0)
        return out
    finally:
        proc.terminate()
        proc.join(10)


def countermeasure_cost(repeats: int = 3) -> dict[str, float]:
    """CPU of one call's countermeasure work (``antispoof_stream_windows`` windows, one thread), measured in this
    run for the shipped telephone network and for AASIST."""
    from voiceauth.antispoof.countermeasure import create_countermeasure
    from voiceauth.antispoof.windows import tile_to
    from voiceauth.audio.resample import resample
    from voiceauth.config import Settings

    _single_thread()
    speech = resample(digits("george", STRINGS[0], 40), 8000, 16000)
    windows = float(Settings().antispoof_stream_windows)
    out: dict[str, float] = {"stream_windows": windows}
    models: tuple[Literal["telephone", "aasist"], ...] = ("telephone", "aasist")
    for model in models:
        cm = create_countermeasure(Settings(antispoof_model=model))
        batch = np.stack([tile_to(speech, cm.window)] * int(windows)).astype(np.float32)
        cm.score_windows(batch)
        cpu = []
        for _ in range(repeats):
            t = time.process_time()
            cm.score_windows(batch)
            cpu.append(time.process_time() - t)
        out[f"{model}_cpu_ms_per_call"] = 1000 * float(np.median(cpu))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="1,10,25,50,60")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--feed-ms", type=int, default=100, help="ivr_feed_ms of the server (audio block per hop)")
    ap.add_argument("--backend", default="auto", help="embedding backend of the server (Settings.backend)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "streaming.md")
    ap.add_argument(
        "--greeting-s",
        type=float,
        default=0.0,
        help="seconds of line noise before the caller speaks (the IVR greeting); 0 = speech from the first frame",
    )
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--liveness", action="store_true", help="the IVR's liveness step on: calls answer a challenge")
    ap.add_argument(
        "--answer",
        choices=("after-prompt", "barge-in"),
        default="after-prompt",
        help="liveness: answer once the IVR's prompts have played (line noise meanwhile), or as soon as challenged",
    )
    ap.add_argument("--skip-aasist", action="store_true", help="skip the countermeasure cost part")
    ap.add_argument("--antispoof-levels", default="", help="levels run again with antispoof_mode=monitor (e.g. 1,5)")
    ap.add_argument(
        "--antispoof",
        choices=("enforce", "monitor", "off"),
        default="enforce",
        help="antispoof_mode of the server for the main levels (default: the service's default, enforce)",
    )
    args = ap.parse_args()
    cmd = f"python -m benchmarks.streaming_latency --levels {args.levels} --workers {args.workers}"
    cmd += f" --feed-ms {args.feed_ms} --backend {args.backend}" + (" --skip-single" if args.skip_single else "")
    cmd += f" --antispoof-levels {args.antispoof_levels}" if args.antispoof_levels else ""
    cmd += f" --antispoof {args.antispoof}" if args.antispoof != "enforce" else ""
    cmd += " --liveness" if args.liveness else ""
    cmd += " --answer barge-in" if args.liveness and args.answer == "barge-in" else ""
    lines = [
        "# Streaming verification benchmark",
        "",
        f"Command: `{cmd}`",
        f"Machine: {os.cpu_count()} CPUs visible (`nproc`), load average at start "
        f"{os.getloadavg()[0]:.1f} (other work shares these cores; each level's load is in its row).",
        "",
    ]
    record: dict[str, Any] = {"command": cmd, "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    if not args.skip_single:
        print("part 1: decision latency, one call at a time", flush=True)
        single = single_call_latency()
        for r in single["rows"]:
            print("  ", r, flush=True)
        pol = single["policy"]
        record["single"] = {k: v for k, v in single.items() if k != "policy"}
        lines += [
            "## Decision latency after the deciding speech (one call at a time)",
            "",
            f"Policy: first evaluation at {pol.min_speech_s:g} s of speech, then every {pol.embed_every_s:g} s, "
            f"decide by {pol.max_speech_s:g} s; blocks of 100 ms; "
            "the production engine and SpeechBrain both on one thread.",
            "",
            "| speaker (claims george) | decision | speech s | early | latency ms | SpeechBrain ms | embeddings |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in single["rows"]:
            lines.append(
                f"| {r['speaker']} | {r['decision']} | {r['speech_s']:.2f} | {r['early']} | {r['latency_ms']:.0f} "
                f"| {r['reference_embed_ms']:.0f} | {r['evaluations']} |"
            )
        lines += [
            "",
            f"Median latency {single['median_ms']:.0f} ms (p95 {single['p95_ms']:.0f} ms); SpeechBrain's reference "
            f"embedding of the same speech, median {single['reference_median_ms']:.0f} ms; "
            f"ratio {single['ratio']:.2f}. Over the network add up to one 100 ms block of buffering.",
            "",
        ]
    print("part 2: concurrent calls", flush=True)
    rows = concurrency(
        [int(x) for x in args.levels.split(",")],
        args.workers,
        args.feed_ms,
        args.backend,
        args.antispoof,
        greeting_s=args.greeting_s,
        liveness=args.liveness,
        after_prompt=args.liveness and args.answer == "after-prompt",
    )
    record["levels"] = rows
    sustained = max(
        [r["calls"] for r in rows if r["p99_ms"] is not None and r["p99_ms"] <= 300 and r["decided"] == r["calls"]]
        or [0]
    )
    record["sustained_calls"] = sustained
    lines += [
        f"## Concurrent real-time calls (L16 8 kHz over WebSocket, embedding backend `{args.backend}`, "
        f"`antispoof_mode={args.antispoof}`)",
        "",
        "One client process (asyncio, frames pre-encoded, one 20 ms ticker paces every call); the server in its own "
        f"process with {args.workers} IVR worker threads, AASIST off, the replay check on as in production (every "
        f"call plays a take no earlier call played; `replayed` counts calls refused as replays, expected 0); "
        f"{args.greeting_s:.1f} s of line noise (the IVR "
        "greeting) before the caller speaks; call starts spread evenly over one call length; audio reaches the "
        f"verifier in {args.feed_ms} ms "
        "blocks near an evaluation and in blocks of up to 1 s while far from one. "
        f"Each call claims {_genuine(args.liveness)} and is one of six FSDD speakers ({_genuine(args.liveness)}: the"
        " genuine caller, ACCEPT expected; the others REJECT, or CHALLENGE_FAILED with liveness on)"
        + (
            "; liveness on: each call answers its digit challenge, decided after 1.2 s of closing silence, "
            + (
                "answered once the IVR's prompts have played (line noise on the caller's line until then)"
                if args.answer == "after-prompt"
                else "answered as soon as the challenge arrives (barge-in)"
            )
            if args.liveness
            else ""
        )
        + ". Latency = decision "
        "arrival - sending of the frame at the server's `decided_at_ms`.",
        "",
        "| calls | load 1m | decided | as expected | false accepts | genuine not accepted | replayed | errors "
        "| p50 ms | p95 ms | p99 ms | max ms | server CPU s / call | client CPU s / call |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    for r in rows:
        lines.append(
            f"| {r['calls']} | {r['load_avg_1m']:.1f} | {r['decided']} | {r['correct']} | {r['false_accepts']} "
            f"| {r['false_rejects']} | {r['spoof_suspected']} "
            f"| {r['errors']} "
            f"| {f(r['p50_ms'])} | {f(r['p95_ms'])} | {f(r['p99_ms'])} | {f(r['max_ms'])} "
            f"| {r['server_cpu_s_per_call']:.3f} | {r['client_cpu_s_per_call']:.3f} |"
        )
    wrong = [f"{r['calls']} calls: " + ", ".join(r["wrong"]) for r in rows if r["wrong"]]
    if wrong:
        lines += [
            "",
            "Not as expected (speaker/recording index: decision; an impostor's NOT_ENOUGH_SPEECH is a refusal, not "
            "an accept): " + "; ".join(wrong) + ".",
        ]
    cpu = float(np.median([r["server_cpu_s_per_call"] for r in rows]))
    audio_s = rows[0]["call_audio_s"] if rows else 0.0
    lines += [
        "",
        f"Sustained with p99 <= 300 ms and every call decided: **{sustained} calls**.",
        f"CPU per call (server process, median over levels): {cpu:.3f} s for {audio_s:.1f} s of call audio, so two "
        f"dedicated cores keep up with about {2 * audio_s / cpu:.0f} simultaneous calls by CPU alone "
        "(before any latency bound).",
        "",
    ]
    if not args.skip_aasist:
        cost = countermeasure_cost()
        record["countermeasure_cost"] = cost
        aasist = cost["aasist_cpu_ms_per_call"] / 1000
        lines += [
            "## The countermeasure's CPU per call",
            "",
            f"Measured in this run on one thread, for one call's {cost['stream_windows']:.0f} windows of 4 s "
            f"(`antispoof_stream_windows`): the shipped telephone network {cost['telephone_cpu_ms_per_call']:.1f} ms, "
            f"AASIST {1000 * aasist:.0f} ms. The levels above ran with `antispoof_mode={args.antispoof}`"
            + (" (the telephone network's cost is inside their CPU per call)" if args.antispoof != "off" else "")
            + f". With AASIST instead a call would cost about {aasist:.2f} s more CPU: two dedicated cores would keep "
            f"up with about {2 * audio_s / (cpu + aasist):.0f} simultaneous calls of this length by CPU alone.",
            "",
        ]
    if args.antispoof_levels:
        spoof_rows = concurrency(
            [int(x) for x in args.antispoof_levels.split(",")],
            args.workers,
            args.feed_ms,
            args.backend,
            "monitor",
            greeting_s=args.greeting_s,
        )
        record["levels_antispoof_monitor"] = spoof_rows
        lines += [
            "Measured through the service with `antispoof_mode=monitor` (AASIST scores the call's speech windows; "
            "decisions unchanged):",
            "",
            "| calls | load 1m | decided | correct | p50 ms | p99 ms | server CPU s / call |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in spoof_rows:
            lines.append(
                f"| {r['calls']} | {r['load_avg_1m']:.1f} | {r['decided']} | {r['correct']} | {f(r['p50_ms'])} "
                f"| {f(r['p99_ms'])} | {r['server_cpu_s_per_call']:.3f} |"
            )
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
