"""``voiceauth spoof-eval BONAFIDE_DIR SPOOF_DIR --json``: countermeasure EER, APCER and BPCER on two folders.

Each folder holds WAV/FLAC files, directly or in sub-folders (any sample rate; resampled to 16 kHz). Every file is
scored by the configured countermeasure (:func:`voiceauth.antispoof.create_countermeasure`); APCER and BPCER are
taken at the configured threshold (``VOICEAUTH_ANTISPOOF_THRESHOLD``) unless ``--threshold`` is given. ``--channel
telephone`` first passes every file through 8 kHz G.711 mu-law and back, to measure the countermeasure on telephone
audio; ``service`` and ``service-telephone`` score what the service scores: the file (or that call leg) through the
configured front end (band matching, VAD) to the speech span. ``--target-bpcer 0.01`` also reports the threshold at
which that share of the bona fide files is flagged: the value to set as a tenant's spoof threshold (``PUT
/v1/thresholds/spoof``) from the tenant's own genuine calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer

from voiceauth.cli._common import user_errors
from voiceauth.config import get_settings
from voiceauth.embedding.base import FloatArray

__all__ = ["CHANNELS", "register", "spoof_eval"]

CHANNELS = ("clean", "telephone", "service", "service-telephone")


def spoof_eval(
    bonafide_dir: Path = typer.Argument(..., help="Folder of real (bona fide) speech files."),
    spoof_dir: Path = typer.Argument(..., help="Folder of spoofed (synthetic, converted, replayed) speech files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    threshold: float | None = typer.Option(None, help="Spoof log-odds threshold; default: the configured one."),
    channel: str = typer.Option(
        "clean", help="clean, telephone (8 kHz G.711 mu-law round trip), service or service-telephone (front end)."
    ),
    target_bpcer: float | None = typer.Option(
        None, help="Also report the threshold that flags this share (0-1) of the bona fide files, e.g. 0.01."
    ),
) -> None:
    """EER, APCER and BPCER of the spoofing countermeasure on a bona fide and a spoof folder."""
    from voiceauth.antispoof.attacks import telephone_channel
    from voiceauth.antispoof.countermeasure import create_countermeasure
    from voiceauth.antispoof.evaluation import (
        audio_files,
        score_files,
        service_channel,
        spoof_metrics,
        threshold_for_bpcer,
    )
    from voiceauth.antispoof.windows import AntiSpoofError

    settings = get_settings()
    with user_errors():
        if channel not in CHANNELS:
            raise AntiSpoofError(f"channel {channel!r} is not supported; use {', '.join(CHANNELS)}")
        mode = channel
        bona_files, spoof_files = audio_files(bonafide_dir), audio_files(spoof_dir)
        cm = create_countermeasure(settings)
        thr = cm.threshold if threshold is None else float(threshold)
        chan: Callable[[FloatArray], FloatArray] | None = None
        if mode == "telephone":
            chan = telephone_channel
        elif mode.startswith("service"):
            from voiceauth.audio.frontend import FrontEnd

            chan = service_channel(FrontEnd(settings), telephone=mode == "service-telephone")
        bona_scores = score_files(cm, bona_files, chan)
        metrics = spoof_metrics(bona_scores, score_files(cm, spoof_files, chan), thr)
        at_target = threshold_for_bpcer(bona_scores, target_bpcer) if target_bpcer is not None else None
    data = {
        **metrics.as_dict(),
        "channel": mode,
        "model": cm.name,
        "pooling": cm.pooling,
        "max_windows": cm.max_windows,
    }
    if at_target is not None:
        data["target_bpcer"] = target_bpcer
        data["threshold_at_target_bpcer"] = at_target
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(
            f"EER {100 * metrics.eer:.2f}%  APCER {100 * metrics.apcer:.2f}%  BPCER {100 * metrics.bpcer:.2f}%  "
            f"at threshold {thr:g} ({metrics.n_bonafide} bona fide, {metrics.n_spoof} spoof, {mode}, {cm.name})"
        )
        if at_target is not None:
            typer.echo(f"threshold for a BPCER of {100 * (target_bpcer or 0):g}%: {at_target:.4f}")


def register(app: typer.Typer) -> None:
    app.command("spoof-eval")(spoof_eval)
