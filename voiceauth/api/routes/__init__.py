"""One router per resource; each only translates HTTP to the services and the store."""

from __future__ import annotations

from voiceauth.api.routes import admin, audio, challenges, health, security, speakers

__all__ = ["admin", "audio", "challenges", "health", "security", "speakers"]
