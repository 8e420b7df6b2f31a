"""Wiring for the IVR edge: everything a call needs, built once per process (by the API's app or a test).

:class:`IvrService` holds the engine and verifier (from :class:`voiceauth.pipeline.Pipeline`), the streaming policy,
the call flow, prompts, PINs, the outcome registry, the webhook, the worker threads and the API-key resolver used
by AudioHook and L16 (``X-API-KEY`` = a voiceauth ``telephony`` key), and the Twilio gate (each tenant's Twilio
auth token, :mod:`ivr.twilio_auth`).
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from enrollment.session import Enroller
from ivr.calls import CallOutcome, CallRegistry, StoreCallLog, WebhookNotifier
from ivr.flows.machine import Flow
from ivr.flows.standard import standard_flow
from ivr.pins import PinBook, PinChecker
from ivr.prompts import PromptLibrary
from ivr.serializers.base import CallStart
from ivr.transport import TransportLimits
from ivr.twilio_auth import StoreTwilioTokens, TwilioGate, TwilioTokens
from voiceauth.antispoof.replay import ReplayPolicy
from voiceauth.audio.stream import FrontEndConfig, StreamingFrontEnd
from voiceauth.config import Settings
from voiceauth.embedding.base import EmbeddingEngine
from voiceauth.errors import NotFound
from voiceauth.store.ani import lookup_caller
from voiceauth.store.repo import Store
from voiceauth.streaming import StreamingPolicy, StreamingVerifier
from voiceauth.verification import Verifier

if TYPE_CHECKING:
    from voiceauth.antispoof.countermeasure import Countermeasure
    from voiceauth.antispoof.stream import CallSpoof, WindowBatcher
    from voiceauth.liveness.challenges import IssuedChallenge
    from voiceauth.liveness.recognizer import DigitRecognizer

__all__ = ["IvrService", "KeyInfo", "KeyResolver", "StaticKeys"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyInfo:
    tenant: str
    role: str  # telephony | security | admin
    audiohook_secret: bytes | None = None  # client secret for AudioHook HTTP message signatures


class KeyResolver(Protocol):
    def resolve(self, api_key: str) -> KeyInfo | None: ...


class StaticKeys:
    """A fixed key table (tests, single-tenant demos); keys compared by SHA-256 in constant time."""

    def __init__(self, keys: Mapping[str, KeyInfo]) -> None:
        self._keys = {hashlib.sha256(k.encode()).digest(): v for k, v in keys.items()}

    def resolve(self, api_key: str) -> KeyInfo | None:
        digest = hashlib.sha256(api_key.encode()).digest()
        for known, info in self._keys.items():
            if hmac.compare_digest(known, digest):
                return info
        return None


def _store_directory(store: Store) -> Callable[[str, str], str]:
    def lookup(tenant: str, ani: str) -> str:
        try:
            with store.transaction() as tx:
                return lookup_caller(tx, tx.tenant(tenant).id, ani) or ""
        except NotFound:
            return ""

    return lookup


def _single_threaded() -> None:
    """Each IVR worker runs torch ops on one OpenMP thread (a per-thread setting): many calls in parallel scale
    across cores far better than every call fighting for all of them."""
    try:
        ctypes.CDLL(None).omp_set_num_threads(1)
    except (AttributeError, OSError):  # no OpenMP runtime loaded
        log.debug("no OpenMP runtime; IVR workers use torch's default threads")


def _background_worker() -> None:
    """A preparation thread: one OpenMP thread, and a lower CPU priority (nice +10, Linux's per-thread nice) so that
    when the cores are busy the threads deciding calls run first; the preparation has the closing silence to finish."""
    _single_threaded()
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: same priority as the other workers
        log.debug("IVR preparation threads run at normal priority")


class IvrService:
    def __init__(
        self,
        settings: Settings,
        *,
        engine: EmbeddingEngine,
        verifier: Verifier,
        keys: KeyResolver | None = None,
        pins: PinChecker | None = None,
        flow: Flow | None = None,
        prompts: PromptLibrary | None = None,
        registry: CallRegistry | None = None,
        ani_directory: Callable[[str, str], str] | None = None,
        enroller: Enroller | None = None,
        call_log: StoreCallLog | None = None,
        persist_calls: bool = True,
        countermeasure: Countermeasure | None = None,
        twilio_tokens: TwilioTokens | None = None,
        recognizer: DigitRecognizer | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.verifier = verifier
        self.keys = keys
        # Twilio: each tenant's own auth token (stored on its API keys unless a table is given)
        self.twilio = TwilioGate(settings, twilio_tokens or StoreTwilioTokens(verifier.store))
        # handshakes refused for bad credentials, per client address: beyond the budget refused unseen, not audited
        from voiceauth.api.ratelimit import build_auth_failure_limiter  # here: voiceauth.api imports the IVR routes

        self.auth_failures = build_auth_failure_limiter(settings, now=time.monotonic)
        # the standard flow, with the liveness challenge step unless Settings.ivr_liveness is off
        self.flow = flow or standard_flow(settings.ivr_liveness, settings.ivr_liveness_fallback)
        self._recognizer = recognizer
        self._recognizer_lock = threading.Lock()
        if recognizer is None and settings.ivr_liveness == "challenge":  # ready before the first challenged call
            threading.Thread(target=self._load_recognizer, name="recogniser-load", daemon=True).start()
        self.policy = StreamingPolicy.from_settings(settings)
        self.frontend_config = FrontEndConfig(settings)
        if pins is None:
            pins = PinBook.from_file(settings.ivr_pin_file) if settings.ivr_pin_file else PinBook()
        self.pins = pins
        self.prompts = prompts or PromptLibrary(settings.ivr_prompt_dir or settings.home / "prompts")
        self.registry = registry or CallRegistry()
        # outcomes in the store (GET /v1/calls from any worker process); the registry is this process's live view
        self.call_log = call_log or (StoreCallLog(verifier.store) if persist_calls else None)
        secret = settings.ivr_webhook_secret.get_secret_value().encode() if settings.ivr_webhook_secret else None
        self.webhook = WebhookNotifier(settings.ivr_webhook_url, secret)
        self.executor = ThreadPoolExecutor(
            max_workers=settings.ivr_workers, thread_name_prefix="ivr", initializer=_single_threaded
        )
        # challenge answers are recognised and embedded here, during their closing silence (StreamingVerifier)
        self.preparer = ThreadPoolExecutor(
            max_workers=settings.ivr_workers, thread_name_prefix="ivr-prepare", initializer=_background_worker
        )
        self.limits = TransportLimits(
            max_frame_bytes=settings.ivr_max_frame_bytes,
            idle_timeout_s=settings.ivr_idle_timeout_s,
            max_call_s=settings.ivr_max_call_s,
        )
        # calling number -> customer reference: the given directory, else the store's caller_numbers mappings
        self._ani = ani_directory if ani_directory is not None else _store_directory(verifier.store)
        self.enroller = enroller  # passive enrolment during calls (None: not offered)
        self._active = 0  # calls admitted and not yet ended (admission control: ivr_max_calls)
        self._active_lock = threading.Lock()
        # AASIST on call streams (Settings.antispoof_mode): windows of all calls scored on one batching worker
        # the replay check of each call's deciding speech against the claimed speaker's earlier attempts
        self.replay = ReplayPolicy.from_settings(settings)
        self.spoof_batcher: WindowBatcher | None = None
        if countermeasure is not None and settings.antispoof_mode != "off":
            from voiceauth.antispoof.stream import WindowBatcher

            self.spoof_batcher = WindowBatcher(countermeasure)

    def refused(self, protocol: str, tenant: str | None, reason: str, *, address: str, path: str) -> None:
        """Log and audit a handshake refused for its credentials (``twilio.refused``...), at most the per-address
        budget of them (``api_auth_failures_per_minute``): a flood of bad handshakes is logged, not audited."""
        log.warning("%s stream or webhook refused: %s", protocol, reason)
        if self.auth_failures.acquire(address) > 0:
            return
        try:
            with self.verifier.store.transaction() as tx:
                tenant_id = None
                if tenant:
                    try:
                        tenant_id = tx.tenant(tenant).id
                    except NotFound:
                        pass
                details = {"reason": reason[:200], "path": path[:200], "tenant": (tenant or "")[:128]}
                tx.audit(
                    f"{protocol}.refused",
                    actor=f"ivr:{protocol}",
                    tenant_id=tenant_id,
                    outcome="refused",
                    details=details,
                )
        except Exception:  # noqa: BLE001 - the refusal stands; the store may be down
            log.exception("could not audit a refused %s handshake", protocol)

    def over_auth_budget(self, address: str) -> bool:
        """True when ``address`` used up its budget of refused handshakes (refuse it without looking further)."""
        return self.auth_failures.peek(address) > 0

    def admit(self) -> bool:
        """Take a call slot; False when ``ivr_max_calls`` calls are already in progress (refuse the call)."""
        with self._active_lock:
            if self._active >= self.settings.ivr_max_calls:
                return False
            self._active += 1
            return True

    def release(self) -> None:
        with self._active_lock:
            self._active = max(0, self._active - 1)

    @property
    def active_calls(self) -> int:
        return self._active

    def lookup_ani(self, tenant: str, ani: str) -> str:
        """The customer reference for a caller's number ("" when unknown or no directory is configured)."""
        if not ani or self._ani is None:
            return ""
        return self._ani(tenant, ani) or ""

    def new_frontend(self, start: CallStart) -> StreamingFrontEnd:
        return StreamingFrontEnd(
            self.frontend_config,
            sample_rate=start.sample_rate,
            fmt=start.encoding,
            source_format=f"{start.encoding} {start.sample_rate} Hz call",
        )

    def _load_recognizer(self) -> None:
        try:
            self.recognizer  # noqa: B018 - loads it
        except Exception:  # noqa: BLE001 - the first challenged call retries it and gets the error
            log.warning("the digit recogniser did not load; retried on the first challenged call", exc_info=True)

    @property
    def recognizer(self) -> DigitRecognizer:
        """The digit recogniser of liveness challenges (created on first use; decoders are per thread)."""
        with self._recognizer_lock:
            if self._recognizer is None:
                from voiceauth.liveness.recognizer import create_recognizer

                self._recognizer = create_recognizer(processes=self.settings.liveness_recognizer_processes)
            return self._recognizer

    def issue_challenge(self, tenant: str, speaker_ref: str, call_id: str) -> IssuedChallenge:
        """A fresh liveness challenge for this call's claimed reference (stored hashed, single use)."""
        from voiceauth.liveness.store import issue_challenge

        with self.verifier.store.transaction() as tx:
            return issue_challenge(
                tx,
                tx.tenant(tenant).id,
                speaker_ref,
                n_digits=self.settings.challenge_digits,
                ttl_s=self.settings.challenge_ttl_s,
                call_id=call_id,
                actor="ivr",
            )

    def new_verifier(
        self, start: CallStart, tenant: str, speaker_ref: str, *, challenge: IssuedChallenge | None = None
    ) -> StreamingVerifier:
        return StreamingVerifier(
            frontend=self.new_frontend(start),
            engine=self.engine,
            verifier=self.verifier,
            tenant=tenant,
            speaker_ref=speaker_ref,
            call_id=start.call_id,
            policy=self.policy,
            spoof=self._call_spoof(),
            replay=self.replay,
            challenge_id=challenge.challenge_id if challenge is not None else None,
            challenge_digits=len(challenge.digits) if challenge is not None else 0,
            recognizer=self.recognizer if challenge is not None else None,
            answer_end_silence_ms=self.settings.ivr_liveness_end_silence_ms,
            preparer=self.preparer,
        )

    def _call_spoof(self) -> CallSpoof | None:
        if self.spoof_batcher is None:
            return None
        from voiceauth.antispoof.stream import CallSpoof

        s = self.settings
        return CallSpoof(self.spoof_batcher, mode=s.antispoof_mode, max_windows=s.antispoof_stream_windows)

    def record(self, outcome: CallOutcome, *, final: bool) -> None:
        self.registry.put(outcome)
        if self.call_log is not None:
            self.call_log.put(outcome)
        if final:
            self.webhook.submit(outcome)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.preparer.shutdown(wait=False, cancel_futures=True)
        close = getattr(self._recognizer, "close", None)
        if close is not None:
            close()
        self.webhook.close()
        if self.spoof_batcher is not None:
            self.spoof_batcher.close(timeout=5.0)
        if self.call_log is not None:
            self.call_log.close()
