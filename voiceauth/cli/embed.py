"""``voiceauth embed FILE`` and ``voiceauth compare A B``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from voiceauth.audio.io import load_audio
from voiceauth.cli._common import user_errors
from voiceauth.config import get_settings
from voiceauth.embedding.base import cosine
from voiceauth.embedding.factory import create_engine

__all__ = ["register"]


def embed(
    file: Path = typer.Argument(..., help="Audio file (WAV/FLAC)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the 192-d speaker embedding of FILE."""
    with user_errors():
        audio = load_audio(file)
        vec = create_engine(get_settings()).embed(audio.samples, audio.sample_rate)
    data = {
        "dim": int(vec.size),
        "embedding": [round(float(x), 6) for x in vec],
        "sample_rate": audio.sample_rate,
        "seconds": round(audio.seconds, 3),
    }
    typer.echo(json.dumps(data) if as_json else f"{file}: {vec.size}-d embedding, {audio.seconds:.2f} s")


def compare(a: Path = typer.Argument(...), b: Path = typer.Argument(...)) -> None:
    """Print the cosine similarity of the speakers in A and B (-1..1; same speaker is high)."""
    with user_errors():
        engine = create_engine(get_settings())
        wa, wb = load_audio(a), load_audio(b)
        score = cosine(engine.embed(wa.samples, wa.sample_rate), engine.embed(wb.samples, wb.sample_rate))
    typer.echo(f"{score:.4f}")


def register(app: typer.Typer) -> None:
    app.command()(embed)
    app.command()(compare)
