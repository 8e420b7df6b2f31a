"""``voiceauth inspect FILE``: what the front end makes of an audio file (format, speech, quality)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.types import Utterance
from voiceauth.cli._common import user_errors
from voiceauth.config import get_settings

__all__ = ["register", "report"]


def report(utt: Utterance) -> dict[str, Any]:
    """The JSON-ready description of an utterance (no audio)."""
    q = utt.quality
    return {
        "format": utt.source_format,
        "source_sample_rate": utt.source_sample_rate,
        "narrowband": utt.narrowband,
        "duration_s": round(utt.duration_s, 3),
        "net_speech_s": round(q.net_speech_s, 3),
        "snr_db": round(q.snr_db, 2),
        "clipping_ratio": round(q.clipping_ratio, 6),
        "level_dbfs": round(q.level_dbfs, 2),
        "codes": list(q.codes),
        "segments": [list(s) for s in utt.segments],
    }


def inspect(
    file: Path = typer.Argument(..., help="Audio file (WAV or FLAC)."),
    channel: int | None = typer.Option(None, "--channel", help="Channel of a multi-channel file (default 0)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Decode FILE through the front end and print its format, duration, net speech and quality."""
    with user_errors():
        data = report(FrontEnd(get_settings()).from_file(file, channel=channel))
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"{file}: {data['format']}, {data['duration_s']:.2f} s, net speech {data['net_speech_s']:.2f} s, "
        f"SNR {data['snr_db']:.1f} dB, clipping {data['clipping_ratio']:.4f}, level {data['level_dbfs']:.1f} dBFS, "
        f"{' '.join(data['codes'])}"
    )


def register(app: typer.Typer) -> None:
    app.command()(inspect)
