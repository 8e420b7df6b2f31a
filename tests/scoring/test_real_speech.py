"""The production scorer on real speech: FSDD digit strings of different speakers, and `voiceauth evaluate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from voiceauth.audio.frontend import FrontEnd
from voiceauth.config import Settings
from voiceauth.scoring.evalsets import Piece, fsdd_digit_strings
from voiceauth.scoring.factory import create_scorer

pytestmark = [pytest.mark.model, pytest.mark.slow]

SPEAKERS = ("george", "jackson", "theo")


@pytest.fixture(scope="module")
def strings(fsdd_dir: Path) -> list[Piece]:
    """Two ~3 s digit strings (no shared recording) of each of three speakers, through G.711 A-law."""
    pieces = fsdd_digit_strings(fsdd_dir, per_speaker=2, seed=7)
    return [p for p in pieces if p.speaker in SPEAKERS]


def test_production_scorer_separates_fsdd_speakers(strings: list[Piece], engine: Any) -> None:
    settings = Settings()
    scorer = create_scorer(settings)
    frontend = FrontEnd(settings)
    utts = [frontend.from_samples(p.samples, p.sample_rate) for p in strings]
    assert all(u.narrowband for u in utts)
    emb = [engine.embed(u.speech, u.sample_rate) for u in utts]
    same: list[float] = []
    diff: list[float] = []
    for i in range(len(strings)):
        for j in range(i + 1, len(strings)):
            s = scorer.score(emb[i], emb[j], narrowband=True, probe_speech_s=utts[j].quality.net_speech_s)
            assert 0.0 <= s.calibrated <= 100.0
            (same if strings[i].speaker == strings[j].speaker else diff).append(s.calibrated)
    assert len(same) == 3 and len(diff) == 12
    # every genuine pair scores above every impostor pair, and on the right side of even odds
    assert min(same) > max(diff)
    assert min(same) > 50.0 > max(diff)


def test_evaluate_cli_prints_required_json(strings: list[Piece], tmp_path: Path) -> None:
    from voiceauth.cli import app

    for k, p in enumerate(strings):
        folder = tmp_path / "speakers" / p.speaker
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"take{k}.wav", p.samples, p.sample_rate, subtype="PCM_16")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "speakers"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert {"eer", "min_dcf", "target_trials", "nontarget_trials", "files"} <= set(data)
    assert data["files"] == 6 and data["target_trials"] == 3 and data["nontarget_trials"] == 12
    assert 0.0 <= data["eer"] <= 1.0 and data["min_dcf"] >= 0.0
    assert np.isfinite(data["eer"])


def test_evaluate_cli_refuses_a_folder_without_speakers(tmp_path: Path) -> None:
    from voiceauth.cli import app

    result = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert "no .wav or .flac files" in result.output
