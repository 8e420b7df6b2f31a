"""Shared helpers for CLI commands: turning VoiceAuthError into a clean exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from voiceauth.errors import VoiceAuthError

__all__ = ["err_console", "user_errors"]

err_console = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a VoiceAuthError as one red line and exit with status 2 (no traceback for users)."""
    try:
        yield
    except VoiceAuthError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from exc
