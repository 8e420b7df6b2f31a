"""``voiceauth calibrate`` on real speech: FSDD digit strings of six speakers, the real ECAPA engine.

The folder is built in tmp: per speaker, three 6-digit strings (different recordings each), 8 kHz. The CLI runs
in-process with the session's engine (the model is loaded once for the suite) and the production scorer; the
shipped AS-norm cohort is used when it has been built, plain cosine scoring otherwise (said in the report).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from tests.conftest import FSDD_SPEAKERS, fsdd_string
from voiceauth.cli import app
from voiceauth.config import Settings
from voiceauth.scoring.metrics import eer
from voiceauth.scoring.shipped import COHORT_DIR

OUT = Path(__file__).resolve().parents[2] / "test-output" / "calibration"


@pytest.fixture(scope="module")
def speaker_dir(fsdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fsdd-speakers")
    rng = np.random.default_rng(8)
    for spk in FSDD_SPEAKERS:
        (root / spk).mkdir()
        for k in range(3):
            digits = [int(d) for d in rng.integers(0, 10, 6)]
            sf.write(root / spk / f"string{k}.wav", fsdd_string(fsdd_dir, spk, digits, 10 + k), 8000)
    return root


@pytest.fixture(scope="module")
def cached_embed() -> Any:
    """The production ``embed_file``, each file embedded once for this module (the real model is slow)."""
    from voiceauth.cli.evaluate import embed_file

    cache: dict[Path, Any] = {}

    def embed(path: Path, engine: Any, settings: Settings) -> Any:
        if path not in cache:
            cache[path] = embed_file(path, engine, settings)
        return cache[path]

    return embed


def _backend() -> str:
    return "cohort" if (COHORT_DIR / "backend.json").is_file() else "cosine"


@pytest.mark.model
def test_calibrate_cli_writes_det_png_and_html_from_real_speech(
    speaker_dir: Path, engine: Any, cached_embed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(offline=True, scoring_backend=_backend(), data_dir=tmp_path / "data")
    monkeypatch.setattr("voiceauth.cli.calibrate.get_settings", lambda: settings)
    monkeypatch.setattr("voiceauth.embedding.factory.create_engine", lambda _s: engine)
    monkeypatch.setattr("voiceauth.cli.evaluate.embed_file", cached_embed)
    out = tmp_path / "report"
    res = CliRunner().invoke(
        app, ["calibrate", str(speaker_dir), "--target-far", "0.01", "--out", str(out), "--replicates", "300"]
    )
    assert res.exit_code == 0, res.output
    assert "EER" in res.output and "threshold for FAR <= 0.01" in res.output

    data = json.loads((out / "report.json").read_text())
    assert data["speakers"] == 6
    assert data["target_trials"] == 6 * 3  # 3 files per speaker: 3 pairs each
    assert data["nontarget_trials"] == 18 * 17 // 2 - 18
    assert data["scoring_backend"] == settings.scoring_backend
    # 135 impostor trials cannot support FAR 1% (needs 300): the ISO/IEC 19795-1 warning says so
    assert data["min_impostor_trials"] == 300
    assert any("ISO/IEC 19795-1" in w for w in data["warnings"])
    assert "warning:" in res.output
    # real speakers are separable on digit strings: EER well below chance, threshold inside the 0-100 scale
    assert data["eer"] < 0.2
    assert 0.0 < data["threshold"] <= 100.0
    at = data["at_threshold"]
    assert at["far"] <= 0.01
    assert at["far_ci"][0] <= at["far"] <= at["far_ci"][1]
    assert at["frr_ci"][0] <= at["frr"] <= at["frr_ci"][1]
    # FAR falls and FRR rises with the threshold
    far = [p["far"] for p in data["points"]]
    frr = [p["frr"] for p in data["points"]]
    assert far == sorted(far, reverse=True) and frr == sorted(frr)

    det = (out / "det.png").read_bytes()
    scores = (out / "scores.png").read_bytes()
    assert det.startswith(b"\x89PNG") and scores.startswith(b"\x89PNG")
    assert len(det) > 10_000 and len(scores) > 5_000
    html = (out / "report.html").read_text()
    assert base64.b64encode(det).decode() in html and base64.b64encode(scores).decode() in html
    # self-contained: every src is a data: URL, no external links or scripts
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', html))
    assert "http://" not in html and "https://" not in html
    assert f"{data['threshold']:.2f}" in html
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("det.png", "scores.png", "report.html"):
        (OUT / name).write_bytes((out / name).read_bytes())


@pytest.mark.model
def test_report_eer_matches_the_metrics_on_the_same_scores(speaker_dir: Path, engine: Any, cached_embed: Any) -> None:
    from voiceauth.calibration.report import build_report
    from voiceauth.calibration.trials import score_trials, trial_spec
    from voiceauth.scoring.factory import create_scorer

    settings = Settings(offline=True, scoring_backend=_backend())
    trials = score_trials(trial_spec(speaker_dir), lambda f: cached_embed(f, engine, settings), create_scorer(settings))
    report = build_report(trials, target_far=0.05, replicates=200, current_thresholds={"high_security": 70.0})
    assert report.data["eer"] == pytest.approx(eer(trials.tar, trials.non))
    hs = report.data["current_thresholds"]["high_security"]
    assert hs["threshold"] == 70.0
    assert hs["far"] == pytest.approx(float(np.mean(trials.non >= 70.0)))
    assert hs["frr"] == pytest.approx(float(np.mean(trials.tar < 70.0)))
