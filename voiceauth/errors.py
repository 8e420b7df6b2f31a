"""The one exception hierarchy of voiceauth.

Every error the library raises on purpose derives from :class:`VoiceAuthError`. Messages say what was
wrong and what is accepted; HTTP status codes are chosen only in the API layer.

Hierarchy::

    VoiceAuthError
    ├── ConfigError              bad or unsafe settings
    ├── ModelError               model files missing, corrupt or unobtainable
    │   ├── ModelFileMissing
    │   ├── ModelChecksumMismatch
    │   └── ModelFetchError
    ├── AudioError               audio that cannot be used (see voiceauth.audio)
    │   ├── AudioDecodeError     empty, truncated, corrupt or unsupported data
    │   ├── UnsupportedFormat    a codec, rate or channel layout we do not accept
    │   ├── AudioLimitExceeded   too large or too long
    │   └── InvalidSamples       NaN / Inf samples
    └── EmbeddingError           the engine could not embed the input
"""

from __future__ import annotations

__all__ = [
    "AudioDecodeError",
    "AudioError",
    "AudioLimitExceeded",
    "ConfigError",
    "EmbeddingError",
    "InvalidSamples",
    "ModelChecksumMismatch",
    "ModelError",
    "ModelFetchError",
    "ModelFileMissing",
    "UnsupportedFormat",
    "VoiceAuthError",
]


class VoiceAuthError(Exception):
    """Root of every deliberate voiceauth error."""

    #: stable machine-readable code, used for problem+json ``type`` later
    code: str = "voiceauth-error"


class ConfigError(VoiceAuthError):
    code = "config-error"


class ModelError(VoiceAuthError):
    code = "model-error"


class ModelFileMissing(ModelError):
    code = "model-file-missing"


class ModelChecksumMismatch(ModelError):
    code = "model-checksum-mismatch"


class ModelFetchError(ModelError):
    code = "model-fetch-error"


class AudioError(VoiceAuthError):
    code = "audio-error"


class AudioDecodeError(AudioError):
    code = "audio-decode-error"


class UnsupportedFormat(AudioError):
    code = "unsupported-audio-format"


class AudioLimitExceeded(AudioError):
    code = "audio-limit-exceeded"


class InvalidSamples(AudioError):
    code = "invalid-samples"


class EmbeddingError(VoiceAuthError):
    code = "embedding-error"
