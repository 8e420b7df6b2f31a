"""The one Settings object of voiceauth.

Read from environment variables prefixed ``VOICEAUTH_`` (and an optional ``.env``). Components never read
the environment themselves: they take what they need from a :class:`Settings` in their constructor.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Precision", "Settings", "get_settings"]

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]


def _default_home() -> Path:
    return Path.home() / ".cache" / "voiceauth"


class Settings(BaseSettings):
    """All tunables of the service, with embedded defaults that work offline on one machine."""

    model_config = SettingsConfigDict(env_prefix="VOICEAUTH_", env_file=".env", extra="ignore")

    # -- where things live -------------------------------------------------------------------------
    home: Path = Field(default_factory=_default_home, description="Root for fetched models and caches.")
    model_dir: Path | None = Field(
        default=None,
        description="An existing directory holding the five spkrec-ecapa-voxceleb files; tried first.",
    )

    # -- model fetch ---------------------------------------------------------------------------------
    hub_timeout_s: float = Field(default=4.0, gt=0, description="Timeout for the model hub probe.")
    offline: bool = Field(default=False, description="Skip the model hub entirely.")

    # -- embedding engine ------------------------------------------------------------------------------
    precision: Precision = "auto"
    device: Device = "auto"
    num_threads: int | None = Field(default=None, ge=1, description="torch intra-op threads; None = torch's.")
    backend: Literal["auto", "speechbrain", "fused", "fused-int8", "onnx-int8", "openvino-int8", "openvino-bf16"] = (
        Field(
            default="auto",
            description="Embedding backend (voiceauth.embedding.backends); auto = fastest that holds accuracy here.",
        )
    )
    backend_calibration: bool = Field(
        default=True,
        description="backend auto on a CPU: measure the candidate backends at the first start on this machine "
        "(cached; voiceauth.embedding.autoselect); false = the static rule.",
    )
    telephone_adapter: bool = Field(
        default=True,
        description="Embed telephone-band audio with ECAPA's first two blocks adapted to the telephone channel"
        " (models/telephone, voiceauth.embedding.adapt); full-band audio always uses the released weights."
        " Voiceprints and the shipped cohort are built with it: change it only together with re-enrolment.",
    )

    # -- audio front end (voiceauth.audio) -------------------------------------------------------------
    max_upload_bytes: int = Field(default=20_000_000, ge=1024, description="Largest audio upload accepted.")
    max_audio_duration_s: float = Field(default=120.0, gt=0, description="Longest audio accepted (decoded).")
    max_audio_channels: int = Field(default=8, ge=1, le=64, description="Most interleaved channels accepted.")
    min_speech_s: float = Field(default=1.0, ge=0, description="Less net speech than this is TOO_SHORT.")
    min_snr_db: float = Field(default=10.0, description="Estimated SNR below this is TOO_NOISY.")
    max_clipping_ratio: float = Field(default=0.01, ge=0, le=1, description="More clipped samples is CLIPPED.")
    min_level_dbfs: float = Field(default=-40.0, le=0, description="Speech RMS below this is TOO_QUIET.")
    vad_threshold: float = Field(default=0.5, gt=0, lt=1, description="Silero speech probability threshold.")
    vad_min_speech_ms: int = Field(default=200, ge=0, description="Shorter VAD speech segments are dropped.")
    vad_min_silence_ms: int = Field(default=100, ge=0, description="Shorter pauses do not split segments.")
    vad_speech_pad_ms: int = Field(default=30, ge=0, description="Audio kept either side of each segment.")
    audio_band: Literal["auto", "telephone", "wide"] = Field(
        default="auto",
        description="telephone = take all audio to the 8 kHz band so phone and web audio embed alike; wide = keep;"
        " auto = both: the telephone band for every input and, for wideband input, also the full band"
        " (Utterance.speech_wide), so wideband voiceprints verify wideband probes at full band.",
    )
    embed_edge_ms: int = Field(
        default=500,
        ge=0,
        le=5000,
        description="Audio kept before the first and after the last VAD speech segment in what is embedded"
        " (ECAPA embeds whole utterances better than VAD-trimmed ones: benchmarks/results/accuracy.md).",
    )
    embed_max_pause_ms: int = Field(
        default=1000,
        ge=0,
        le=10_000,
        description="Pauses between speech segments longer than this are shortened to it in what is embedded"
        " (hold music, long silences); shorter pauses are kept.",
    )

    # -- store / enrolment / verification --------------------------------------------------------------
    data_dir: Path | None = Field(default=None, description="SQLite db and dev data key; None = $home/data.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL (postgresql+psycopg://...); None = SQLite in data_dir."
    )
    database_connect_retry_s: float = Field(
        default=5.0, ge=0, description="PostgreSQL: a failed connect is retried with backoff for this long."
    )
    database_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connections kept per worker process.")
    data_key: SecretStr | None = Field(
        default=None, description="AES-256 key(s), base64 of 32 bytes, comma-separated; the first encrypts."
    )
    data_key_file: Path | None = Field(
        default=None, description="File of base64 data keys, one a line, the first encrypts (if no data_key)."
    )
    generate_data_key: bool = Field(
        default=True, description="Dev only: make $data_dir/data.key if no key is set; false in production."
    )
    enroll_target_speech_s: float = Field(default=20.0, gt=0, description="Net speech for 100% enrolment.")
    enroll_min_speech_s: float = Field(default=8.0, gt=0, description="Net speech for a usable voiceprint.")
    enroll_min_utterance_speech_s: float = Field(
        default=1.0, ge=0, description="Enrolment utterances with less net speech are refused (TOO_SHORT)."
    )
    enroll_consistency_operating_point: str = Field(
        default="convenience", description="Anti-poisoning: threshold vs. enrolled."
    )
    verify_min_speech_s: float = Field(
        default=2.0,
        ge=0,
        description="Net speech needed for a decision (and a stream's first evaluation); operating points hold their"
        " false-accept rate from 2 s of speech (models/cohort/backend.json dev_by_duration).",
    )
    verify_operating_point: str = Field(default="high_security", description="Threshold name decisions use.")
    adapt_voiceprint: bool = Field(default=False, description="Blend accepted probes into the voiceprint.")
    adapt_weight: float = Field(default=0.1, gt=0, lt=1, description="Weight of one probe in adaptation.")
    lockout_failures: int = Field(default=5, ge=1, description="Failures before lockout (800-63B).")
    lockout_base_s: float = Field(default=30.0, ge=30, description="First lockout; doubles per failure.")
    lockout_disable_failures: int = Field(
        default=20, ge=2, description="Consecutive failures that disable voice until staff re-enable it."
    )
    retention_days: int = Field(default=3 * 365, ge=1, description="Unused voiceprints expire after.")
    watchlist_operating_point: str = Field(default="high_security", description="Watchlist hit threshold.")

    # -- scoring (normalisation, calibration) ---------------------------------------------------------
    scoring_backend: Literal["cohort", "cosine"] = Field(
        default="cohort", description="cohort = AS-norm + calibration (shipped models/cohort); cosine = baseline."
    )
    scoring_cohort_dir: Path | None = Field(
        default=None, description="Directory with cohort.npz/backend.json/MANIFEST.json; None = shipped."
    )

    # -- HTTP API (voiceauth.api) ----------------------------------------------------------------------
    api_rate_limit_per_minute: float = Field(default=120.0, gt=0, description="Sustained requests per key.")
    api_rate_limit_burst: int = Field(default=30, ge=1, description="Requests a key may make at once.")
    api_request_timeout_s: float = Field(default=60.0, gt=0, description="Whole-request time limit (503 after).")
    api_audio_workers: int = Field(default=2, ge=1, description="Threads running front end + engine at once.")
    api_max_queued_audio: int = Field(default=32, ge=1, description="Audio requests waiting beyond: 503.")
    api_key_reload_s: float = Field(default=2.0, gt=0, description="How often the data-key file is re-read.")
    api_demo_tenant: str = Field(default="demo", description="Tenant `voiceauth serve` creates on embedded defaults.")
    api_rate_limit_store: Literal["auto", "memory", "database"] = Field(
        default="auto",
        description="Where token buckets live: database = shared by all workers; auto = database on PostgreSQL.",
    )
    api_auth_failures_per_minute: float = Field(
        default=10.0, gt=0, description="Requests with an invalid API key one client address may make a minute."
    )
    api_auth_failure_burst: int = Field(
        default=20, ge=1, description="Invalid-key requests one client address may make at once (then 429)."
    )
    api_drain_s: float = Field(
        default=30.0, ge=0, description="On SIGTERM: new calls are refused, in-flight ones get this long to finish."
    )

    # -- streaming verification and IVR (voiceauth.streaming, ivr/) ------------------------------------
    stream_embed_every_s: float = Field(default=0.5, gt=0, description="New net speech between re-embeddings.")
    stream_max_speech_s: float = Field(default=8.0, gt=0, description="A stream decides at this much speech.")
    stream_accept_margin: float = Field(default=0.0, ge=0, description="Points above the threshold to ACCEPT early.")
    stream_reject_margin: float = Field(default=15.0, ge=0, description="Points below the threshold to REJECT early.")
    ivr_tenant: str | None = Field(
        default=None,
        description="Tenant of the unscoped /v1/streams/twilio and /v1/twiml (aliases of /v1/streams/twilio/{tenant}"
        " and /v1/twiml/{tenant}); None: those refuse. The embedded demo sets it to api_demo_tenant.",
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="A Twilio auth token of ivr_tenant given by environment (tenants' tokens are stored on their"
        " API keys: voiceauth keys create --twilio-auth-token).",
    )
    twilio_open_tenants: list[str] = Field(
        default_factory=list,
        description="Embedded demo only: tenants whose Twilio streams and TwiML are accepted unsigned while they"
        " have no Twilio auth token (voiceauth serve opens its demo tenant and warns at start); refused with a"
        " database_url.",
    )
    ivr_public_url: str | None = Field(default=None, description="Public base URL (https://host) for TwiML/signatures.")
    ivr_webhook_url: str | None = Field(default=None, description="Call outcomes are POSTed here as JSON.")
    ivr_webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key signing webhook posts.")
    ivr_max_frame_bytes: int = Field(default=65536, ge=1024, description="Larger WebSocket frames end the call.")
    ivr_idle_timeout_s: float = Field(default=10.0, gt=0, description="No frame for this long ends the call.")
    ivr_max_call_s: float = Field(default=900.0, gt=0, description="Calls are ended after this long.")
    ivr_workers: int = Field(default=2, ge=1, description="Threads running stream VAD + embedding.")
    ivr_feed_ms: int = Field(default=100, ge=20, le=1000, description="Call audio is fed to VAD in blocks this long.")
    ivr_max_calls: int = Field(
        default=64,
        ge=1,
        description="Streams one process serves at once; more are refused at once (hang-up with an error, so the "
        "platform falls back) instead of slowing every call (see benchmarks/results/streaming.md).",
    )
    ivr_pin_file: Path | None = Field(default=None, description="JSON {tenant: {ref: pbkdf2 hash}} for PIN fallback.")
    ivr_prompt_dir: Path | None = Field(default=None, description="Prompt WAV cache; None = $home/prompts.")
    ivr_liveness: Literal["off", "challenge"] = Field(
        default="challenge",
        description="The IVR's liveness step: challenge = the caller says a fresh random digit string, checked in the"
        " same speech the voice is verified on (voiceauth.liveness); off = the passive flow (any speech).",
    )
    ivr_liveness_fallback: Literal["pin", "agent"] = Field(
        default="pin", description="After the liveness step fails twice: the DTMF PIN, or straight to an agent."
    )
    ivr_liveness_end_silence_ms: int = Field(
        default=1200, ge=200, le=5000, description="Silence after the caller's digits that ends the answer."
    )

    # -- challenge-response liveness (voiceauth.liveness) --------------------------------------------------
    challenge_digits: int = Field(default=6, ge=4, le=6, description="Digits in a liveness challenge (4-6).")
    challenge_ttl_s: float = Field(default=60.0, gt=0, le=600, description="A challenge expires after this long.")
    challenge_allow_substitution: bool = Field(
        default=False, description="Accept an answer with one substituted digit (never a dropped or added one)."
    )
    liveness_recognizer_processes: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Processes the digit recogniser runs in (PocketSphinx holds Python's lock while it decodes, so in"
        " the server's own threads each answer would stall every call for ~0.1 s); 0 = in the server process.",
    )
    challenge_min_speech_s: float = Field(
        default=2.5,
        ge=0,
        description="Net speech a challenge answer needs for a decision (six spoken digits are about 2.5-3.5 s);"
        " other verifications need verify_min_speech_s.",
    )

    # -- anti-spoofing (voiceauth.antispoof) -------------------------------------------------------------
    antispoof_mode: Literal["off", "monitor", "enforce"] = Field(
        default="enforce",
        description="The countermeasure on every attempt: enforce = a score at or above the tenant's spoof threshold"
        " is SPOOF_SUSPECTED (a failure toward lockout; the IVR transfers to an agent); monitor = score and audit"
        " only; off = not scored (the replay check still runs unless replay_check is false).",
    )
    antispoof_model: Literal["telephone", "aasist"] = Field(
        default="telephone",
        description="telephone = the LFB-LCNN trained for 8 kHz phone speech (models/antispoof, calibrated LLR,"
        " ~1-2 ms CPU per second of speech); aasist = the official AASIST (16 kHz studio audio; flags most phone"
        " callers as spoofs, see benchmarks/results/antispoof.md).",
    )
    antispoof_stream_windows: int = Field(
        default=2, ge=1, le=8, description="Most ~4 s windows the countermeasure scores per call stream."
    )
    antispoof_model_dir: Path | None = Field(
        default=None,
        description="telephone: a folder with lcnn.npz + MANIFEST.json (None = shipped models/antispoof);"
        " aasist: the folder holding the pinned AASIST.pth (None = fetched cache).",
    )
    antispoof_threshold: float | None = Field(
        default=None,
        description="Spoof score at or above which an attempt is SPOOF_SUSPECTED (tenant default); None = the"
        " network's own: telephone = the shipped LLR threshold (1% BPCER on development phone speech), aasist = 0.",
    )
    antispoof_window_samples: int | None = Field(
        default=None, ge=16_000, description="Window at 16 kHz; None = the network's (telephone 64000, aasist 64600)."
    )
    antispoof_hop_samples: int | None = Field(
        default=None, ge=1_600, description="Hop between windows at 16 kHz; None = telephone: the window, aasist: half."
    )
    antispoof_max_windows: int | None = Field(
        default=None,
        ge=1,
        description="Most windows scored per upload; None = telephone 4 (16 s), aasist 8 (8 vs 4: BPCER 16% vs 28%).",
    )
    antispoof_pooling: Literal["mean", "median", "max", "min"] | None = Field(
        default=None, description="How window scores become the attempt's score; None = telephone mean, aasist min."
    )
    antispoof_trim_silence: bool = Field(
        default=True, description="Cut leading/trailing non-speech before scoring (denies the silence shortcut)."
    )
    replay_check: bool = Field(default=True, description="Refuse audio that replays an earlier attempt.")
    replay_retention_s: float = Field(
        default=30 * 86_400.0, gt=0, description="How long attempt fingerprints are kept for the replay check."
    )
    replay_max_ber: float = Field(
        default=0.2, gt=0, lt=0.5, description="Fingerprint bit error rate at or below which audio is a replay."
    )

    @property
    def model_cache_dir(self) -> Path:
        """Where fetched model files are stored (``$home/models/spkrec-ecapa-voxceleb``)."""
        return self.home / "models" / "spkrec-ecapa-voxceleb"

    @property
    def resolved_data_dir(self) -> Path:
        """Where the embedded store keeps its files (``data_dir`` or ``$home/data``)."""
        return self.data_dir if self.data_dir is not None else self.home / "data"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, built once per process (for the CLI and the app's edges)."""
    return Settings()
