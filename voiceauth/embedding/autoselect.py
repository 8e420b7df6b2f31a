"""Backend ``auto`` by measurement: time each candidate backend on this machine once, keep the fastest that passes.

At the first start on a machine (CPU model and flags, thread count, library versions, model weights: the
calibration key), every candidate backend that the benchmark suite's accuracy guard admits
(:data:`CANDIDATES`, the ones installed and native here) is built, embeds a few seconds of real speech (the bundled
recordings, through G.711 mu-law as on a call) and is timed on a 3 s utterance. The fastest whose embeddings keep
cosine >= :data:`GUARD_COSINE` to the fp32 network on every recording wins. The choice, the times and the reason
are stored as JSON in the cache folder under the key, so later starts skip the measurement (delete the file or
change any part of the key to measure again). The measurement is bounded: ``repeats`` timed calls per candidate
and at most ``budget_s`` seconds of timing in all (building a backend's graph the first time, ~15-20 s for ONNX
and OpenVINO, is a one-time cost of that backend and cached by it).

The EER half of the guard (within 2% relative of fp32 on a telephone set) needs hundreds of utterances: it is
checked by ``python -m benchmarks accuracy`` for every backend in :data:`CANDIDATES`, not at start.

:func:`choose` is the pure decision; :func:`select` adds the cache and the measurement (injected ``build``,
``clock``) so both are tested without timing assertions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from voiceauth.embedding.base import EmbeddingEngine, FloatArray

__all__ = [
    "CANDIDATES",
    "GUARD_COSINE",
    "Selection",
    "Trial",
    "available_candidates",
    "calibration_key",
    "choose",
    "current_selection",
    "key_parts",
    "note_static",
    "read_cached",
    "calibration_file",
    "select",
]

log = logging.getLogger(__name__)

#: Backends that passed the suite's accuracy guard (cosine >= 0.999, EER within 2% relative), in order of
#: preference when two measure the same (ties go to the earlier).
CANDIDATES = ("openvino-int8", "onnx-int8", "fused-int8", "openvino-bf16", "fused-bf16")
GUARD_COSINE = 0.999
#: Bumped whenever the calibration's procedure changes (stored choices are then measured again).
PLAN = "calib-v1"
PACKAGES = ("torch", "onnxruntime", "openvino", "nncf", "numpy")

_current: Selection | None = None


@dataclass(frozen=True)
class Trial:
    """One candidate's measurement: median ms per 3 s utterance, minimum cosine to fp32, or why it failed."""

    backend: str
    ms: float | None = None
    cosine_min: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Selection:
    """The backend ``auto`` runs, and why."""

    backend: str
    reason: str
    method: str  # "measured" (this start), "cached" (an earlier start's measurement), "static" (no measurement)
    key: str = ""
    trials: tuple[Trial, ...] = field(default_factory=tuple)
    parts: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "reason": self.reason,
            "method": self.method,
            "key": self.key,
            "trials": [asdict(t) for t in self.trials],
            "parts": dict(self.parts),
        }

    @staticmethod
    def from_dict(doc: Mapping[str, Any], method: str) -> Selection:
        return Selection(
            backend=str(doc["backend"]),
            reason=str(doc["reason"]),
            method=method,
            key=str(doc.get("key", "")),
            trials=tuple(Trial(**t) for t in doc.get("trials", [])),
            parts=dict(doc.get("parts", {})),
        )


def choose(trials: Sequence[Trial], fallback: str) -> tuple[str, str]:
    """The fastest trial that passed the guard, and the reason in words; ``fallback`` when none passed."""
    passed = [t for t in trials if t.error is None and t.ms is not None and (t.cosine_min or 0.0) >= GUARD_COSINE]
    if not passed:
        return fallback, f"no candidate measured and passed the guard; static choice {fallback}"
    best = min(passed, key=lambda t: t.ms or 0.0)  # stable: ties keep CANDIDATES' order
    others = ", ".join(f"{t.backend} {t.ms:.1f} ms" for t in passed if t is not best)
    failed = [t for t in trials if t not in passed]
    reason = f"fastest of the candidates that pass cosine >= {GUARD_COSINE}: {best.backend} {best.ms:.1f} ms per 3 s"
    if others:
        reason += f" (vs {others})"
    if failed:
        reason += "; excluded: " + ", ".join(f"{t.backend} ({t.error or f'cosine {t.cosine_min:.4f}'})" for t in failed)
    return best.backend, reason


def _versions() -> dict[str, str]:
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def key_parts(weights_digest: str, threads: int, candidates: Sequence[str]) -> dict[str, Any]:
    """What the measurement depends on: CPU model and flags, threads, OpenMP wait policy, libraries, weights."""
    from voiceauth.embedding.precision import cpu_flags

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    isa = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma", "sse4")))
    return {
        "plan": PLAN,
        "cpu": model,
        "cpu_flags": isa,
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "").upper(),
        "versions": _versions(),
        "weights": weights_digest,
        "candidates": list(candidates),
    }


def calibration_key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def available_candidates(native_bf16: bool) -> list[str]:
    """The candidates installed here; bf16 ones only where bf16 is native (emulated bf16 is slower than fp32)."""
    from voiceauth.embedding.backends.int8 import int8_available
    from voiceauth.embedding.backends.onnx import onnxruntime_available
    from voiceauth.embedding.backends.openvino import openvino_available

    ok = {
        "openvino-int8": openvino_available(),
        "openvino-bf16": openvino_available() and native_bf16,
        "onnx-int8": onnxruntime_available(),
        "fused-int8": int8_available(),
        "fused-bf16": native_bf16,
    }
    return [c for c in CANDIDATES if ok[c]]


def _unit(x: FloatArray) -> FloatArray:
    out: FloatArray = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return out


def measure(
    candidates: Sequence[str],
    build: Callable[[str], EmbeddingEngine],
    reference: FloatArray,
    speech: Sequence[FloatArray],
    rate: int,
    repeats: int = 3,
    budget_s: float = 5.0,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[Trial], dict[str, EmbeddingEngine]]:
    """Time each candidate on ``speech[0]`` (median of ``repeats`` after one warm-up) and its minimum cosine to
    ``reference`` (fp32 embeddings of ``speech``); candidates past ``budget_s`` of timing are skipped."""
    trials: list[Trial] = []
    engines: dict[str, EmbeddingEngine] = {}
    spent = 0.0
    for name in candidates:
        if spent > budget_s:
            trials.append(Trial(name, error=f"calibration budget of {budget_s:g} s spent"))
            continue
        try:
            engine = build(name)
        except Exception as exc:  # a candidate that cannot load here is excluded, not fatal
            trials.append(Trial(name, error=f"{type(exc).__name__}: {exc}"[:200]))
            continue
        t0 = clock()
        embs = engine.embed_batch(list(speech), rate)  # also the warm-up
        cos = float(np.min(np.sum(_unit(embs) * _unit(reference), axis=1)))
        times = []
        for _ in range(repeats):
            t1 = clock()
            engine.embed(speech[0], rate)
            times.append((clock() - t1) * 1e3)
        spent += clock() - t0
        trials.append(Trial(name, ms=round(float(np.median(times)), 2), cosine_min=round(cos, 6)))
        engines[name] = engine
    return trials, engines


def read_cached(path: Path, key: str) -> Selection | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("key") != key:
        return None
    try:
        return Selection.from_dict(doc, "cached")
    except (KeyError, TypeError):
        return None


def _write(path: Path, selection: Selection) -> None:
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(json.dumps(selection.as_dict(), indent=1))
        os.replace(part, path)
    except OSError as exc:
        log.warning("could not store the backend calibration at %s (%s): it is measured at every start", path, exc)
        part.unlink(missing_ok=True)


def select(
    parts: Mapping[str, Any],
    cache_dir: Path,
    build: Callable[[str], EmbeddingEngine],
    reference: Callable[[], FloatArray],
    speech: Sequence[FloatArray],
    rate: int,
    fallback: str,
    repeats: int = 3,
    budget_s: float = 5.0,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[Selection, EmbeddingEngine | None]:
    """The cached choice for ``parts`` or a fresh measurement (stored); with the chosen engine when it was built.

    ``reference()``: fp32 embeddings of ``speech`` (only computed when measuring).
    """
    global _current
    key = calibration_key(parts)
    path = cache_dir / f"embedding-backend-{key}.json"
    cached = read_cached(path, key)
    if cached is not None:
        _current = cached
        return cached, None
    trials, engines = measure(
        list(parts["candidates"]), build, reference(), speech, rate, repeats=repeats, budget_s=budget_s, clock=clock
    )
    backend, reason = choose(trials, fallback)
    selection = Selection(backend, reason, "measured", key, tuple(trials), dict(parts))
    if any(t.ms is not None for t in trials):
        _write(path, selection)
    _current = selection
    log.info("embedding backend auto -> %s: %s", backend, reason)
    return selection, engines.get(backend)


def note_static(backend: str, reason: str) -> Selection:
    """Record a choice made without measurement (an explicit backend, CUDA, or calibration turned off)."""
    global _current
    _current = Selection(backend, reason, "static")
    return _current


def current_selection() -> Selection | None:
    """The choice behind the engine this process built last (for ``/metrics``), None before any was built."""
    return _current


def calibration_file(cache_dir: Path, parts: Mapping[str, Any]) -> Path:
    return cache_dir / f"embedding-backend-{calibration_key(parts)}.json"
