"""End-to-end latency of ``POST /v1/speakers/{ref}/verifications`` with a 3 s 8 kHz WAV, over real HTTP.

A uvicorn server (the real app: real ECAPA engine, production scoring from settings, SQLite store in a temp
directory) runs in this process; a client enrols ``george`` from two bundled samples, then verifies a 3.0 s,
8 kHz, 16-bit WAV (the first 3 s of ``audio_samples/george_c.wav``) N times, one request at a time. Reported:
p50/p90/p99/mean of the HTTP round trip, next to the bare model time on the same audio (engine ``embed`` of the
front end's speech) and SpeechBrain's own pipeline (``SpeakerRecognition.encode_batch`` on the whole 3 s,
resampled to 16 kHz), interleaved request by request in the same run.

``verify_min_speech_s`` is lowered to 1 s so a 3 s clip is always scored (with the default 3 s of net speech,
a 3 s clip whose pauses VAD removes answers NOT_ENOUGH_SPEECH without running the model, which would
understate the latency).

    .venv/bin/python -m benchmarks.api_latency            # ~1-2 min; writes benchmarks/results/api_latency.{md,json}
    .venv/bin/python -m benchmarks.api_latency -n 100
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "audio_samples"
RESULTS = Path(__file__).resolve().parent / "results"


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def three_second_wav() -> bytes:
    x, sr = sf.read(SAMPLES / "george_c.wav", dtype="float32")
    assert sr == 8000
    buf = io.BytesIO()
    sf.write(buf, x[: 3 * sr], sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="timed verifications")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-reference", action="store_true", help="skip SpeechBrain's pipeline")
    ap.add_argument(
        "--antispoof-mode",
        choices=["off", "monitor", "enforce"],
        default="monitor",
        help="AASIST on every verification (monitor: the service default); results of a mode other than monitor "
        "are written as api_latency-antispoof-MODE.{md,json}",
    )
    args = ap.parse_args()

    import uvicorn

    from models.fetch import ensure_model
    from voiceauth.api import create_app
    from voiceauth.config import Settings
    from voiceauth.embedding.reference import load_reference
    from voiceauth.scoring.shipped import COHORT_DIR
    from voiceauth.store.keys import create_api_key

    tmp = Path(tempfile.mkdtemp(prefix="voiceauth-bench-"))
    # the production scorer when its cohort files are shipped, else the plain-cosine baseline (reported)
    backend: Literal["cohort", "cosine"] = "cohort" if (COHORT_DIR / "MANIFEST.json").is_file() else "cosine"
    settings = Settings(
        data_dir=tmp,
        scoring_backend=backend,
        verify_min_speech_s=1.0,
        # the same clip is sent N times on purpose: the replay check would refuse every repeat (and lock out)
        replay_check=False,
        antispoof_mode=args.antispoof_mode,
        api_rate_limit_per_minute=1e6,
        api_rate_limit_burst=10**6,
    )
    app = create_app(settings)
    services = app.state.services
    with services.store.transaction() as tx:
        t = tx.get_or_create_tenant("bench", actor="bench")
        _, key = create_api_key(tx, t.id, "security", actor="bench")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{port}"
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < 300:
        if not th.is_alive():
            raise SystemExit("the server stopped during start-up (see the log above)")
        try:
            if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    load_s = time.perf_counter() - t_start
    probe = three_second_wav()
    h = {"Authorization": f"Bearer {key}"}
    decisions: dict[str, int] = {}
    times: list[float] = []
    model_times: list[float] = []
    ref_times: list[float] = []
    utt = services.pipeline.utterance(probe)
    engine = services.pipeline.engine
    ref = None
    if not args.no_reference:
        import torchaudio.functional as AF

        ref = load_reference(ensure_model(settings, fetch=False))
        x8, _ = sf.read(io.BytesIO(probe), dtype="float32")
        x16 = AF.resample(torch.from_numpy(x8), 8000, 16000).unsqueeze(0)
    # one round = one HTTP verification, one bare engine embedding, one SpeechBrain embedding, interleaved so
    # all three see the same machine load (this machine is shared; absolute times drift with it)
    with httpx.Client(base_url=base, timeout=120, headers=h) as c:
        body = {"external_ref": "george", "consent": {"method": "benchmark", "text_version": "v1"}}
        c.post("/v1/speakers", json=body).raise_for_status()
        for take in ("george_a", "george_b"):
            files = {"audio": (f"{take}.wav", (SAMPLES / f"{take}.wav").read_bytes(), "audio/wav")}
            c.post("/v1/speakers/george/enrollments", files=files).raise_for_status()
        for i in range(args.warmup + args.n):
            files = {"audio": ("probe.wav", probe, "audio/wav")}
            t0 = time.perf_counter()
            r = c.post("/v1/speakers/george/verifications", files=files)
            dt = time.perf_counter() - t0
            r.raise_for_status()
            t1 = time.perf_counter()
            engine.embed(utt.speech, utt.sample_rate)
            dm = time.perf_counter() - t1
            dr = None
            if ref is not None:
                with torch.inference_mode():
                    t2 = time.perf_counter()
                    ref.encode_batch(x16)
                    dr = time.perf_counter() - t2
            if i >= args.warmup:
                times.append(dt)
                model_times.append(dm)
                if dr is not None:
                    ref_times.append(dr)
                d = r.json()["decision"]
                decisions[d] = decisions.get(d, 0) + 1
    server.should_exit = True
    th.join(timeout=10)
    services.close()
    monitor = services.pipeline._monitor  # monitor mode: attempts AASIST scored after the answer, or dropped
    spoof_scored = monitor.submitted if monitor is not None else 0
    spoof_dropped = monitor.dropped if monitor is not None else 0

    res: dict[str, Any] = {
        "audio": "3.0 s, 8 kHz, PCM16 WAV (first 3 s of audio_samples/george_c.wav)",
        "net_speech_s": round(utt.quality.net_speech_s, 3),
        "n": args.n,
        "decisions": decisions,
        "antispoof_scored_after_decision": spoof_scored,
        "antispoof_dropped_backlog_full": spoof_dropped,
        "http_verify_ms": {
            "p50": round(1000 * _pct(times, 50), 1),
            "p90": round(1000 * _pct(times, 90), 1),
            "p99": round(1000 * _pct(times, 99), 1),
            "mean": round(1000 * statistics.fmean(times), 1),
            "min": round(1000 * min(times), 1),
        },
        "engine_embed_ms_p50": round(1000 * _pct(model_times, 50), 1),
        "speechbrain_reference_ms_p50": round(1000 * _pct(ref_times, 50), 1) if ref_times else None,
        "engine": {"precision": getattr(engine, "precision", ""), "device": getattr(engine, "device", "")},
        "scoring_backend": settings.scoring_backend,
        "antispoof_mode": settings.antispoof_mode,
        "model_load_s": round(load_s, 1),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
    }
    if ref_times:
        res["http_p50_over_reference_p50"] = round(_pct(times, 50) / _pct(ref_times, 50), 2)
    RESULTS.mkdir(exist_ok=True)
    stem = "api_latency" if args.antispoof_mode == "monitor" else f"api_latency-antispoof-{args.antispoof_mode}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    hv = res["http_verify_ms"]
    md = [
        "# API verify latency (end to end over HTTP)",
        "",
        f"`.venv/bin/python -m benchmarks.api_latency --antispoof-mode {args.antispoof_mode}` - one client, "
        "sequential requests, real engine, SQLite, replay check off (the same clip is sent every time); "
        f"AASIST `{args.antispoof_mode}`.",
        "",
        "| audio | n | p50 ms | p90 ms | p99 ms | mean ms | engine embed p50 ms | SpeechBrain ref p50 ms |",
        "|---|---|---|---|---|---|---|---|",
        f"| {res['audio']} | {args.n} | {hv['p50']} | {hv['p90']} | {hv['p99']} | {hv['mean']} | "
        f"{res['engine_embed_ms_p50']} | {res['speechbrain_reference_ms_p50']} |",
        "",
        f"AASIST ({args.antispoof_mode}, warm-up included): {spoof_scored} attempts scored after their answer, "
        f"{spoof_dropped} not "
        "scored (monitor backlog full: sequential requests arrive faster than one AASIST thread scores them).",
        "",
        f"Decisions: {decisions}; scoring backend: {res['scoring_backend']}; engine: {res['engine']}; "
        f"{res['machine']}.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(md))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
