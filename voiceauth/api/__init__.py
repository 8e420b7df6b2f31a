"""The HTTP API (FastAPI): ``create_app(settings)``; served by ``voiceauth serve``."""

from __future__ import annotations

from voiceauth.api.main import create_app

__all__ = ["create_app"]
