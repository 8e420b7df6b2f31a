"""``voiceauth evaluate DIR --json``: EER and minDCF of the production scoring on a folder of speakers.

DIR holds one folder per speaker with audio files (WAV/FLAC). Each file is embedded once; every unordered
pair of files is a trial (target when both are in the same folder), scored through the production scorer
(:func:`voiceauth.scoring.factory.create_scorer`, normalisation included).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from voiceauth.audio.io import load_audio
from voiceauth.cli._common import user_errors
from voiceauth.config import Settings, get_settings
from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.errors import ConfigError
from voiceauth.scoring.evaluation import evaluate as evaluate_scores
from voiceauth.scoring.factory import create_scorer

__all__ = ["embed_file", "list_speaker_files", "register"]

AUDIO_SUFFIXES = (".wav", ".flac")


def list_speaker_files(folder: Path) -> list[tuple[str, Path]]:
    """(speaker, file) for every audio file in DIR/<speaker>/, sorted."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a directory; expected DIR/<speaker>/<audio files>")
    out = [
        (d.name, f)
        for d in sorted(p for p in folder.iterdir() if p.is_dir())
        for f in sorted(d.iterdir())
        if f.suffix.lower() in AUDIO_SUFFIXES
    ]
    if not out:
        raise ConfigError(f"no .wav or .flac files in sub-folders of {folder}; expected DIR/<speaker>/<files>")
    return out


def embed_file(path: Path, engine: EmbeddingEngine, settings: Settings) -> tuple[FloatArray, bool, float]:
    """(embedding, narrowband, net speech seconds) the way production sees a file."""
    audio = load_audio(path)
    from voiceauth.audio.frontend import FrontEnd  # the front end (VAD, channel detection)

    utt = FrontEnd(settings).from_samples(audio.samples, audio.sample_rate)
    speech = utt.speech
    if speech.size < utt.sample_rate // 2:  # VAD found (almost) nothing: embed the whole file
        return engine.embed(audio.samples, audio.sample_rate), utt.narrowband, utt.quality.net_speech_s
    return engine.embed(speech, utt.sample_rate), utt.narrowband, utt.quality.net_speech_s


def evaluate(
    folder: Path = typer.Argument(..., help="DIR with one sub-folder of audio files per speaker."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """EER and minDCF (p_target 0.01) of the production scoring over every pair of files in DIR."""
    with user_errors():
        settings = get_settings()
        files = list_speaker_files(folder)
        from voiceauth.embedding.factory import create_engine

        engine = create_engine(settings)
        scorer = create_scorer(settings)
        rows = [embed_file(f, engine, settings) for _, f in files]
        result = evaluate_scores(
            scorer,
            np.stack([r[0] for r in rows]),
            [s for s, _ in files],
            [r[1] for r in rows],
            [r[2] for r in rows],
        )
    result["scoring_backend"] = settings.scoring_backend
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
        return
    typer.echo(
        f"{result['files']} files, {result['speakers']} speakers: EER {100 * result['eer']:.2f}% "
        f"minDCF(0.01) {result['min_dcf']:.3f} ({result['target_trials']} target / "
        f"{result['nontarget_trials']} non-target trials)"
    )


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
