"""voiceauth: voice-biometrics authentication and IVR service."""

from __future__ import annotations

from voiceauth.errors import VoiceAuthError

__version__ = "0.1.0"
__all__ = ["VoiceAuthError", "__version__"]
