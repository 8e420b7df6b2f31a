"""``voiceauth spoof-eval BONAFIDE_DIR SPOOF_DIR --json`` prints EER, APCER and BPCER."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from voiceauth.antispoof.attacks import SENTENCES, espeak_available, espeak_synthesize
from voiceauth.antispoof.countermeasure import create_countermeasure
from voiceauth.cli import app
from voiceauth.config import get_settings

SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"


@pytest.fixture()
def one_window(aasist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("VOICEAUTH_ANTISPOOF_MAX_WINDOWS", "1")
    monkeypatch.setenv("VOICEAUTH_ANTISPOOF_MODEL", "aasist")  # AASIST: eer 0 on these two files
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (Debian package espeak-ng)")
def test_spoof_eval_prints_eer_apcer_bpcer(tmp_path: Path, one_window: None) -> None:
    bona, spoof = tmp_path / "bonafide", tmp_path / "spoof"
    bona.mkdir()
    spoof.mkdir()
    for f in sorted(SAMPLES.glob("librispeech_*.flac")):
        shutil.copy(f, bona / f.name)
    for i, voice in enumerate(("en-us+m3", "en-gb+f4")):
        sf.write(spoof / f"espeak-{i}.wav", espeak_synthesize(SENTENCES[i], voice, 160), 16_000)
    result = CliRunner().invoke(app, ["spoof-eval", str(bona), str(spoof), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"eer", "apcer", "bpcer", "threshold", "n_bonafide", "n_spoof"} <= set(data)
    assert data["n_bonafide"] == 2 and data["n_spoof"] == 2
    assert data["eer"] == 0.0 and data["apcer"] == 0.0
    assert data["threshold"] == create_countermeasure(get_settings()).threshold  # the configured network's own
    assert data["model"] == create_countermeasure(get_settings()).name
    # what the service scores: a G.711 call leg through the front end, the speech span (one file each: CPU)
    for d in (bona, spoof):
        sorted(d.iterdir())[0].unlink()
    args = ["spoof-eval", str(bona), str(spoof), "--json", "--channel", "service-telephone"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["channel"] == "service-telephone" and data["n_spoof"] == 1 and data["apcer"] == 0.0


def test_spoof_eval_names_an_unknown_channel(tmp_path: Path, one_window: None) -> None:
    result = CliRunner().invoke(app, ["spoof-eval", str(SAMPLES), str(SAMPLES), "--channel", "radio"])
    assert result.exit_code == 2
    assert "channel 'radio' is not supported; use clean, telephone, service, service-telephone" in result.output


def test_spoof_eval_names_an_empty_folder(tmp_path: Path, one_window: None) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["spoof-eval", str(tmp_path / "empty"), str(SAMPLES)])
    assert result.exit_code == 2
    assert "holds no .wav or .flac files" in result.output
