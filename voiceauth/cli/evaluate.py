"""``voiceauth evaluate DIR --json``: EER and minDCF of the production scoring on a folder of speakers.

DIR holds one folder per speaker with audio files (WAV/FLAC). Each file is embedded once; every unordered
pair of files is a trial (target when both are in the same folder), scored through the production scorer
(:func:`voiceauth.scoring.factory.create_scorer`, normalisation included). As in production, two wideband
files are compared at full band, every other pair in the telephone band (:mod:`voiceauth.scoring.evaluation`);
a wideband file is embedded in both bands only when the folder also holds telephone audio.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import typer

from voiceauth.audio.io import load_audio
from voiceauth.audio.types import Utterance
from voiceauth.cli._common import user_errors
from voiceauth.config import Settings, get_settings
from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.errors import ConfigError
from voiceauth.pipeline import embed_bands
from voiceauth.scoring.evaluation import evaluate as evaluate_scores
from voiceauth.scoring.factory import create_scorer

__all__ = ["FileEmbedding", "embed_file", "embed_utterance", "front_end_file", "list_speaker_files", "register"]

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


class FileEmbedding(NamedTuple):
    """A file as production embeds it: the full-band embedding where the file has a full band
    (``Utterance.speech_wide``), else the telephone-band one; ``telephone`` = the telephone-band embedding of a
    full-band file when asked for (None otherwise)."""

    embedding: FloatArray
    telephone: FloatArray | None
    narrowband: bool
    speech_s: float


def front_end_file(path: Path, settings: Settings) -> Utterance:
    """A file through the production front end (VAD, channel detection, band handling)."""
    from voiceauth.audio.frontend import FrontEnd

    audio = load_audio(path)
    utt = FrontEnd(settings).from_samples(audio.samples, audio.sample_rate)
    if utt.speech.size < utt.sample_rate // 2:
        raise ConfigError(
            f"{path}: the VAD found {utt.quality.net_speech_s:.2f} s of speech in {utt.duration_s:.2f} s of audio;"
            " every file needs speech (at least 0.5 s)"
        )
    return utt


def embed_utterance(utt: Utterance, engine: EmbeddingEngine, *, telephone_too: bool) -> FileEmbedding:
    """Embed a front-ended file; ``telephone_too`` also embeds a full-band file's telephone band (mixed pairs)."""
    net = utt.quality.net_speech_s
    if utt.speech_wide is not None and not telephone_too:
        return FileEmbedding(engine.embed(utt.speech_wide, utt.sample_rate), None, False, net)
    tel, wide = embed_bands(engine, utt)  # the same call the service makes (both bands in one batch)
    if wide is None:
        return FileEmbedding(tel, None, True, net)
    return FileEmbedding(wide, tel, False, net)


def embed_file(path: Path, engine: EmbeddingEngine, settings: Settings) -> FileEmbedding:
    """One file the way production sees it, both bands of a full-band file (for trials of any pairing)."""
    return embed_utterance(front_end_file(path, settings), engine, telephone_too=True)


def telephone_rows(rows: list[FileEmbedding]) -> FloatArray:
    """Telephone-band embedding per file (the embedding itself for telephone files)."""
    return np.stack([r.telephone if r.telephone is not None else r.embedding for r in rows])


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
        utts = [front_end_file(f, settings) for _, f in files]
        mixed = len({u.speech_wide is None for u in utts}) == 2
        rows = [embed_utterance(u, engine, telephone_too=mixed) for u in utts]
        result = evaluate_scores(
            scorer,
            np.stack([r.embedding for r in rows]),
            [s for s, _ in files],
            [r.narrowband for r in rows],
            [r.speech_s for r in rows],
            telephone=telephone_rows(rows) if mixed else None,
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
