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
    │   ├── InvalidSamples       NaN / Inf samples
    │   └── NoSpeech             decodable audio without speech (silence, tones, DTMF, noise)
    ├── EmbeddingError           the engine could not embed the input
    ├── ChallengeError           a liveness challenge that cannot be answered (voiceauth.liveness)
    │   ├── ChallengeUnknown     no such challenge for this tenant and speaker reference
    │   ├── ChallengeUsed        the challenge was answered already (single use)
    │   └── ChallengeExpired     the challenge's answer came too late
    └── StoreError               the voiceprint store refused or failed an operation
        ├── NotFound             no such tenant / speaker / row
        ├── AlreadyExists        a unique name or reference is taken
        ├── ConsentRequired      enrolment without a valid consent record
        ├── DataKeyError         data key missing, malformed or unknown key id
        │   └── VoiceprintUnreadable  a stored voiceprint/utterance row fails its integrity check (re-enrol)
        └── AuditChainBroken     the audit hash chain does not verify
"""

from __future__ import annotations

__all__ = [
    "AudioDecodeError",
    "AudioError",
    "AlreadyExists",
    "AudioLimitExceeded",
    "AuditChainBroken",
    "ChallengeError",
    "ChallengeExpired",
    "ChallengeUnknown",
    "ChallengeUsed",
    "ConfigError",
    "ConsentRequired",
    "DataKeyError",
    "EmbeddingError",
    "VoiceprintUnreadable",
    "InvalidSamples",
    "ModelChecksumMismatch",
    "ModelError",
    "ModelFetchError",
    "ModelFileMissing",
    "NoSpeech",
    "NotFound",
    "StoreError",
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


class NoSpeech(AudioError):
    """Raised only where a caller asks for speech (``voiceauth.audio.require_speech``); the front end itself
    reports it as the ``NO_SPEECH`` quality code."""

    code = "no-speech"


class EmbeddingError(VoiceAuthError):
    code = "embedding-error"


# -- store / enrolment / verification ------------------------------------------------------------------


class StoreError(VoiceAuthError):
    code = "store-error"


class NotFound(StoreError):
    code = "not-found"


class AlreadyExists(StoreError):
    code = "already-exists"


class ConsentRequired(StoreError):
    code = "consent-required"


class DataKeyError(StoreError):
    code = "data-key-error"


class VoiceprintUnreadable(DataKeyError):
    """A speaker's stored biometric row does not decrypt under a key we hold (altered or torn ciphertext)."""

    code = "voiceprint-unreadable"

    def __init__(self, message: str, *, speaker_id: int, table: str) -> None:
        super().__init__(message)
        self.speaker_id = speaker_id
        self.table = table


class AuditChainBroken(StoreError):
    code = "audit-chain-broken"


class ChallengeError(VoiceAuthError):
    code = "challenge-error"


class ChallengeUnknown(ChallengeError):
    code = "challenge-unknown"


class ChallengeUsed(ChallengeError):
    code = "challenge-used"


class ChallengeExpired(ChallengeError):
    code = "challenge-expired"
