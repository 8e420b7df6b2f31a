"""Loading the shipped cohort and back-end parameters from ``models/cohort/`` (the I/O edge of scoring).

Files (written by ``python -m voiceauth.scoring.build``):

* ``cohort.npz``   - ``wideband`` and ``narrowband`` cohort embeddings [m, 192] float32 (+ reader ids)
* ``backend.json`` - per channel: centring, AS-norm top-N, calibration ``a, b``, operating points, and what
  was measured to choose them
* ``MANIFEST.json`` - sha256 of both files and their provenance (data, reader split, engine, command)

Nothing is used unless its sha256 matches the manifest.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

import models as _models_pkg
from voiceauth.embedding.space import RELEASED_SPACE
from voiceauth.errors import ModelChecksumMismatch, ModelFileMissing
from voiceauth.scoring.backend import ChannelBackend, CohortScorer, CosineGuard
from voiceauth.scoring.calibration import Calibration
from voiceauth.scoring.normalization import Preprocessor, l2_normalize

__all__ = [
    "COHORT_DIR",
    "cohort_space",
    "cosine_guard",
    "load_backend_json",
    "load_cohort_scorer",
    "sha256_file",
    "verify_cohort_dir",
]

COHORT_DIR = Path(_models_pkg.__file__).resolve().parent / "cohort"  # shipped as package data of `models`
MANIFEST = "MANIFEST.json"
FILES = ("cohort.npz", "backend.json")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_cohort_dir(folder: Path) -> dict[str, Any]:
    """Check every shipped file against ``MANIFEST.json``; return the manifest."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelFileMissing(f"{manifest_path} is missing; rebuild with `python -m voiceauth.scoring.build`")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    for name in FILES:
        path = folder / name
        if not path.is_file():
            raise ModelFileMissing(f"{path} is missing; rebuild with `python -m voiceauth.scoring.build`")
        expected = manifest.get("files", {}).get(name, {}).get("sha256")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelChecksumMismatch(f"{path} has sha256 {actual}, manifest expects {expected}")
    return manifest


def cohort_space(folder: Path = COHORT_DIR) -> str | None:
    """The network that embedded the narrowband cohort (:mod:`voiceauth.embedding.space`), from the manifest's
    ``telephone_space`` (or, in manifests that predate it, the engine tag's ``-tel<digest>``); None if unknown."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(manifest.get("telephone_space"), str):
        return str(manifest["telephone_space"])
    engine = manifest.get("provenance", {}).get("engine")
    if not isinstance(engine, str):
        return None
    found = re.search(r"-tel([0-9a-f]{8})\b", engine)
    return f"tel-{found.group(1)}" if found else RELEASED_SPACE


def load_backend_json(folder: Path = COHORT_DIR, verify: bool = True) -> dict[str, Any]:
    if verify:
        verify_cohort_dir(folder)
    data: dict[str, Any] = json.loads((folder / "backend.json").read_text(encoding="utf-8"))
    return data


def cosine_guard(cohort: Any, readers: Any, points: dict[str, float], target_far: dict[str, float]) -> CosineGuard:
    """Knots of the raw-cosine guard from the cohort's different-reader cosines and the operating points."""
    unit = l2_normalize(np.asarray(cohort, dtype=np.float64))
    ids = np.asarray(readers)
    sims = unit @ unit.T
    iu = np.triu_indices(len(unit), 1)
    impostor = sims[iu][ids[iu[0]] != ids[iu[1]]]
    knots = sorted(
        (float(np.quantile(impostor, 1.0 - target_far[name])), float(points[name]))
        for name in points
        if name in target_far
    )
    cos = [-1.0] + [c for c, _ in knots] + [1.0]
    cal = [0.0] + [t for _, t in knots] + [100.0]
    cal = list(np.maximum.accumulate(cal))  # monotone even if two points cross
    return CosineGuard(cosines=tuple(cos), scores=tuple(float(x) for x in cal))


def _strictest_points(spec: dict[str, Any]) -> dict[str, float]:
    chans = spec["channels"]
    names = chans["wideband"]["operating_points"].keys() & chans["narrowband"]["operating_points"].keys()
    return {n: max(chans["wideband"]["operating_points"][n], chans["narrowband"]["operating_points"][n]) for n in names}


def _channel(name: str, spec: dict[str, Any], arrays: Any, points: dict[str, float]) -> ChannelBackend:
    cohort = l2_normalize(np.asarray(arrays[name], dtype=np.float64))
    mean = l2_normalize(cohort).mean(axis=0) if spec["centre"] else None
    projection = np.asarray(arrays[f"{name}_projection"], dtype=np.float64) if spec.get("projection") else None
    normalises = bool(spec["centre"]) or projection is not None or spec["top_n"] is not None
    guard = None
    if normalises and f"{name}_readers" in arrays.files:
        from voiceauth.scoring.operating_points import TARGET_FAR

        guard = cosine_guard(cohort, arrays[f"{name}_readers"], points, TARGET_FAR)
    return ChannelBackend(
        guard=guard,
        name=name,
        preprocessor=Preprocessor(mean=mean, projection=projection),
        cohort=cohort,
        top_n=spec["top_n"],
        calibration=Calibration(**spec["calibration"]),
    )


def load_cohort_scorer(folder: Path = COHORT_DIR, verify: bool = True) -> CohortScorer:
    """The production scorer from the verified shipped files."""
    spec = load_backend_json(folder, verify=verify)
    with np.load(folder / "cohort.npz", allow_pickle=False) as arrays:
        points = _strictest_points(spec)  # the thresholds decisions use (default_operating_points)
        wide = _channel("wideband", spec["channels"]["wideband"], arrays, points)
        narrow = _channel("narrowband", spec["channels"]["narrowband"], arrays, points)
    return CohortScorer(wideband=wide, narrowband=narrow)
