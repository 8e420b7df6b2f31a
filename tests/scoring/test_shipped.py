"""The shipped cohort: provenance verified before use, tampering refused, operating points measured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from voiceauth.config import Settings
from voiceauth.errors import ModelChecksumMismatch, ModelFileMissing
from voiceauth.scoring.backend import CohortScorer
from voiceauth.scoring.base import CosineScorer
from voiceauth.scoring.evalsets import load_librispeech, split_readers
from voiceauth.scoring.factory import create_scorer
from voiceauth.scoring.operating_points import TARGET_FAR, default_operating_points, operating_points
from voiceauth.scoring.shipped import COHORT_DIR, load_cohort_scorer, sha256_file, verify_cohort_dir


def test_manifest_pins_every_file() -> None:
    manifest = verify_cohort_dir(COHORT_DIR)
    for name, entry in manifest["files"].items():
        assert sha256_file(COHORT_DIR / name) == entry["sha256"]
    prov = manifest["provenance"]
    assert prov["cohort_readers"] and set(prov["cohort_readers"]).isdisjoint(prov["evaluation_readers_excluded"])


def test_cohort_holds_only_cohort_half_readers(librispeech_dir: Path) -> None:
    files, sex = load_librispeech(librispeech_dir)
    cohort, evaluation = split_readers(list(files), sex)
    with np.load(COHORT_DIR / "cohort.npz", allow_pickle=False) as z:
        for channel in ("wideband", "narrowband"):
            readers = set(z[f"{channel}_readers"].tolist())
            assert readers <= set(cohort) and readers.isdisjoint(evaluation)
            assert z[channel].shape == (z[f"{channel}_readers"].size, 192)
            assert np.allclose(np.linalg.norm(z[channel], axis=1), 1.0, atol=1e-4)


def test_factory_builds_the_production_scorer() -> None:
    scorer = create_scorer(Settings())
    assert isinstance(scorer, CohortScorer)
    assert isinstance(create_scorer(Settings(scoring_backend="cosine")), CosineScorer)


def test_tampered_cohort_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cohort"
    shutil.copytree(COHORT_DIR, folder)
    load_cohort_scorer(folder)  # an intact copy loads
    spec = json.loads((folder / "backend.json").read_text())
    spec["channels"]["narrowband"]["calibration"]["b"] += 5.0
    (folder / "backend.json").write_text(json.dumps(spec))
    with pytest.raises(ModelChecksumMismatch, match="backend.json"):
        load_cohort_scorer(folder)
    with pytest.raises(ModelChecksumMismatch):
        create_scorer(Settings(scoring_cohort_dir=folder))
    (folder / "MANIFEST.json").unlink()
    with pytest.raises(ModelFileMissing):
        load_cohort_scorer(folder)


def test_operating_points_are_named_ordered_and_per_channel() -> None:
    points = default_operating_points()
    assert set(TARGET_FAR) <= set(points)
    assert 0.0 <= points["convenience"] <= points["balanced"] <= points["high_security"] <= 100.0
    wide, narrow = operating_points(narrowband=False), operating_points(narrowband=True)
    for name in points:
        assert points[name] == max(wide[name], narrow[name])


def test_calibrated_scale_is_monotone_in_the_normalised_score() -> None:
    scorer = load_cohort_scorer()
    for narrowband in (False, True):
        cal = scorer.backend(narrowband).calibration
        assert cal.a > 0
        values = cal.scale(np.linspace(-5, 5, 101))
        assert np.all(np.diff(values) >= 0)
