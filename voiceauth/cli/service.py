"""Registers the service commands: ``serve``, ``keys``, ``audit``, ``purge-expired``."""

from __future__ import annotations

import typer

from voiceauth.cli import audit as _audit
from voiceauth.cli import keys as _keys
from voiceauth.cli import purge as _purge
from voiceauth.cli import serve as _serve

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    _serve.register(app)
    app.add_typer(_keys.app, name="keys", help="API keys (create, list, revoke) and the data key.")
    app.add_typer(_audit.app, name="audit", help="The hash-chained audit log.")
    _purge.register(app)
