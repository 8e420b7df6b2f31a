"""``voiceauth purge-expired``: delete voiceprints unused for the retention period (default 3 years)."""

from __future__ import annotations

from pathlib import Path

import typer

from voiceauth.cli._common import user_errors
from voiceauth.cli._data import DATA_DIR, settings_for
from voiceauth.store.repo import open_store

__all__ = ["register"]


def purge_expired(data_dir: Path | None = DATA_DIR) -> None:
    """Purge expired voiceprints and their enrolment rows; their speakers verify as EXPIRED until re-enrolled."""
    with user_errors():
        settings = settings_for(data_dir)
        store = open_store(settings)
        try:
            n = store.purge_expired(actor="cli")
        finally:
            store.dispose()
    typer.echo(f"purged {n} expired voiceprints (retention {settings.retention_days} days)")


def register(app: typer.Typer) -> None:
    app.command("purge-expired")(purge_expired)
