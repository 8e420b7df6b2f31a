"""``voiceauth audit verify``: recompute the audit hash chain; exit 1 when any event was edited or removed."""

from __future__ import annotations

from pathlib import Path

import typer

from voiceauth.cli._common import err_console, user_errors
from voiceauth.cli._data import DATA_DIR, settings_for
from voiceauth.store.repo import open_store

__all__ = ["app"]

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command("verify")
def verify(data_dir: Path | None = DATA_DIR) -> None:
    """Verify every audit event's hash and link; report the first one that does not verify."""
    with user_errors():
        store = open_store(settings_for(data_dir))
        try:
            report = store.verify_audit_chain()
        finally:
            store.dispose()
    if report.ok:
        typer.echo(f"audit chain OK: {report.events} events verified")
        return
    err_console.print(
        f"[red]audit chain BROKEN[/red] at event {report.first_bad_seq}: {report.reason} "
        f"({report.events} events verified before it)",
        highlight=False,
    )
    raise typer.Exit(code=1)
