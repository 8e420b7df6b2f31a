"""The measurements: latency per length, batch throughput, accuracy guard, memory and environment.

Subjects are timed round-robin (each repeat times every subject once) so that load from other processes on a
shared machine falls on all of them alike; every figure is also reported as a ratio to the reference.
"""

from __future__ import annotations

import os
import platform
import resource
import threading
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.data import RATE, SpeechSource, Utterance
from benchmarks.subjects import REFERENCE, Subject
from voiceauth.embedding.base import FloatArray
from voiceauth.scoring.metrics import eer

__all__ = ["RssSampler", "accuracy", "accuracy_of", "cpu_summary", "environment", "latency", "throughput"]


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class RssSampler:
    """Peak resident memory (MiB) of this process while a block runs, sampled every few ms."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _rss_mb())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak_mb = _rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _unit(x: FloatArray) -> FloatArray:
    out: FloatArray = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return out


def latency(
    subjects: Sequence[Subject], source: SpeechSource, seconds: float, repeats: int, warmup: int = 1
) -> dict[str, dict[str, Any]]:
    """p50/p95/p99 (ms) of one ``seconds``-long 8 kHz utterance per subject, and cosine to the reference."""
    wav = source.string(source.speakers[0], seconds)
    times: dict[str, list[float]] = {s.name: [] for s in subjects}
    cpu: dict[str, list[float]] = {s.name: [] for s in subjects}  # process CPU time: robust to other load
    embs: dict[str, FloatArray] = {}
    peak: dict[str, float] = {s.name: 0.0 for s in subjects}
    for s in subjects:
        for _ in range(warmup):
            embs[s.name] = s.embed_batch([wav], RATE)[0]
    for _ in range(repeats):
        for s in subjects:
            with RssSampler() as mem:
                c0, t0 = time.process_time(), time.perf_counter()
                s.embed_batch([wav], RATE)
                times[s.name].append((time.perf_counter() - t0) * 1e3)
                cpu[s.name].append((time.process_time() - c0) * 1e3)
            peak[s.name] = max(peak[s.name], mem.peak_mb)
    ref_p50 = _pct(times[REFERENCE], 50)
    ref_cpu = _pct(cpu[REFERENCE], 50)
    ref = embs[REFERENCE]
    out: dict[str, dict[str, Any]] = {}
    for s in subjects:
        p50 = _pct(times[s.name], 50)
        out[s.name] = {
            "p50_ms": round(p50, 2),
            "p95_ms": round(_pct(times[s.name], 95), 2),
            "p99_ms": round(_pct(times[s.name], 99), 2),
            "speedup": round(ref_p50 / p50, 2),
            "cpu_p50_ms": round(_pct(cpu[s.name], 50), 2),
            "cpu_speedup": round(ref_cpu / _pct(cpu[s.name], 50), 2),
            "cosine": round(float(np.dot(_unit(embs[s.name]), _unit(ref))), 6),
            "peak_rss_mb": round(peak[s.name], 1),
            "repeats": repeats,
        }
    return out


def throughput(
    subjects: Sequence[Subject],
    source: SpeechSource,
    batches: Sequence[int],
    low_s: float = 2.0,
    high_s: float = 8.0,
    reference_max_batch: int = 8,
) -> dict[str, list[dict[str, Any]]]:
    """Utterances/s and audio-seconds/s for batches of mixed lengths (uniform in [low_s, high_s]).

    Also the process CPU time of each call: ``audio_s_per_cpu_s`` is the work rate per busy core, which other jobs
    on a shared machine do not dilute the way they dilute the wall-clock figure (with one torch thread it is the
    rate of one worker; ``cores`` single-threaded workers would embed ``cores`` times as much).
    """
    pool = source.mixed(max(batches), low_s, high_s)
    out: dict[str, list[dict[str, Any]]] = {s.name: [] for s in subjects}
    for s in subjects:
        s.embed_batch(pool[:2], RATE)  # warm-up
    for b in batches:
        wavs = pool[:b]
        audio_s = sum(w.size for w in wavs) / RATE
        for s in subjects:
            if s.name.startswith((REFERENCE, "speechbrain")) and b > reference_max_batch:
                # SpeechBrain's pipeline and EcapaEngine embed mixed lengths one by one: large batches only cost time
                continue
            c0, t0 = time.process_time(), time.perf_counter()
            s.embed_batch(wavs, RATE)
            dt = time.perf_counter() - t0
            cpu = time.process_time() - c0
            out[s.name].append(
                {
                    "batch": b,
                    "audio_s": round(audio_s, 2),
                    "wall_s": round(dt, 4),
                    "utt_per_s": round(b / dt, 2),
                    "audio_s_per_s": round(audio_s / dt, 1),
                    "cpu_s": round(cpu, 4),
                    "audio_s_per_cpu_s": round(audio_s / cpu, 1),
                }
            )
    return out


def accuracy(
    subjects: Sequence[Subject], source: SpeechSource, per_speaker: int, seconds: float = 3.0
) -> dict[str, Any]:
    """Cosine to the fp32 reference and EER on mu-law 8 kHz digit strings (all pairs; same speaker = target)."""
    utts = source.utterances(per_speaker, seconds, mulaw=True)
    name = (
        f"{source.origin}: {len(utts)} digit strings of {seconds:g} s, G.711 mu-law 8 kHz, "
        f"{len(source.speakers)} speakers"
    )
    return accuracy_of(subjects, utts, name)


def accuracy_of(subjects: Sequence[Subject], utts: Sequence[Utterance], name: str) -> dict[str, Any]:
    """Per subject: cosine of each utterance's embedding to the reference's, and EER over all pairs of ``utts``."""
    wavs = [u.samples for u in utts]
    speakers = sorted({u.speaker for u in utts})
    labels = np.array([speakers.index(u.speaker) for u in utts])
    iu = np.triu_indices(len(utts), k=1)
    same = (labels[:, None] == labels[None, :])[iu]
    embs = {s.name: s.embed_batch(wavs, RATE) for s in subjects}
    ref = embs[REFERENCE]
    ref_eer = eer((ref @ ref.T)[iu][same], (ref @ ref.T)[iu][~same])
    per: dict[str, dict[str, float]] = {}
    for sub, e in embs.items():
        cos = np.sum(_unit(e) * _unit(ref), axis=1)
        scores = (e @ e.T)[iu]
        value = eer(scores[same], scores[~same])
        per[sub] = {
            "cosine_min": round(float(cos.min()), 6),
            "cosine_mean": round(float(cos.mean()), 6),
            "eer": round(float(value), 5),
            "eer_rel_to_fp32": round(float((value - ref_eer) / ref_eer), 4) if ref_eer > 0 else 0.0,
        }
    return {
        "set": name,
        "trials": {"target": int(same.sum()), "nontarget": int((~same).sum())},
        "backends": per,
    }


def cpu_summary() -> str:
    """The CPU model and its AVX-512/AMX/VNNI extensions in one line, for results files."""
    env = environment("cpu")
    isa = [f for f in env["cpu_isa"] if f in ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni")]
    return f"{env['cpu']} ({', '.join(isa) or 'no AMX, AVX-512 BF16 or VNNI'})"


def environment(device: str) -> dict[str, Any]:
    flags: set[str] = set()
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    versions = {}
    for pkg in ("torch", "torchaudio", "speechbrain", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "absent"
    env: dict[str, Any] = {
        "device": device,
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_isa": sorted(f for f in flags if f.startswith(("avx512", "amx", "avx_vnni"))),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "versions": versions,
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
        env["gpu_peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return env
