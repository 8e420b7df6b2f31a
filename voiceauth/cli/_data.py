"""The ``--data-dir`` option shared by the service commands (serve, keys, audit, purge-expired)."""

from __future__ import annotations

from pathlib import Path

import typer

from voiceauth.config import Settings, get_settings

__all__ = ["DATA_DIR", "settings_for"]

DATA_DIR = typer.Option(
    None,
    "--data-dir",
    help="Directory of the embedded store (SQLite database, dev data key); default from settings.",
    file_okay=False,
)


def settings_for(data_dir: Path | None) -> Settings:
    settings = get_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir.expanduser().resolve()})
    return settings
