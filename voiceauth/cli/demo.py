"""``voiceauth demo``: embed the bundled samples and show same- vs different-speaker scores."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from voiceauth.audio.io import load_audio
from voiceauth.cli._common import user_errors
from voiceauth.config import get_settings
from voiceauth.embedding.factory import create_engine

__all__ = ["register"]

_SAMPLES = Path(__file__).resolve().parents[2] / "audio_samples"


def demo(samples: Path = typer.Option(_SAMPLES, help="Folder of {speaker}_{take}.wav files.")) -> None:
    """Embed every {speaker}_{take}.wav sample and print mean same/different-speaker cosine."""
    console = Console()
    files = sorted(samples.glob("*_?.wav"))
    if len(files) < 2:
        raise typer.BadParameter(f"need at least two {{speaker}}_{{take}}.wav files in {samples}")
    with user_errors():
        engine = create_engine(get_settings())
        audios = [load_audio(f) for f in files]
        embs = engine.embed_batch([a.samples for a in audios], audios[0].sample_rate)
    speakers = [f.stem.rsplit("_", 1)[0] for f in files]
    same: list[float] = []
    diff: list[float] = []
    for i, j in combinations(range(len(files)), 2):
        (same if speakers[i] == speakers[j] else diff).append(float(embs[i] @ embs[j]))
    table = Table(title=f"ECAPA on {len(files)} bundled samples ({engine.precision}, {engine.device})")
    table.add_column("speaker")
    table.add_column("same-speaker cosine (mean)", justify="right")
    table.add_column("best impostor cosine", justify="right")
    for spk in sorted(set(speakers)):
        idx = [k for k, s in enumerate(speakers) if s == spk]
        other = [k for k, s in enumerate(speakers) if s != spk]
        s_scores = [float(embs[a] @ embs[b]) for a, b in combinations(idx, 2)]
        i_scores = [float(embs[a] @ embs[b]) for a in idx for b in other]
        table.add_row(spk, f"{np.mean(s_scores):.3f}", f"{max(i_scores):.3f}")
    console.print(table)
    console.print(
        f"mean same-speaker {np.mean(same):.3f}  vs  mean different-speaker {np.mean(diff):.3f}  "
        f"(margin {np.mean(same) - np.mean(diff):.3f})"
    )


def register(app: typer.Typer) -> None:
    app.command()(demo)
