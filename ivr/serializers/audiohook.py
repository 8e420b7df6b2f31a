"""Genesys Cloud AudioHook protocol version 2 (WebSocket; Genesys is the client). Audio: binary frames of PCMU
(G.711 mu-law) or L16 at 8000 Hz, mono or stereo interleaved (customer ``external`` channel first as offered).

Spec: https://developer.genesys.cloud/devapps/audiohook/protocol-reference - text messages
``{"version": "2", "id": <session>, "type": ..., "seq": n, "parameters": {...}}``; client messages also carry
``serverseq`` and ``position``, server messages ``clientseq``. Each side's ``seq`` starts at 1 and increases by
exactly 1 (anything else is a protocol error). Client -> server: ``open``, ``ping``, ``update``, ``paused``,
``resumed``, ``discarded``, ``close``, ``error``; server -> client: ``opened`` (one chosen media offer), ``pong``,
``event`` (verification results as ``entities``), ``disconnect``, ``closed``. A connection probe (all-zero
``conversationId``) gets ``opened`` and ``closed`` and nothing else. Binary audio before ``opened`` is an error.

The handshake's HTTP message signature (RFC 9421 as AudioHook uses it: label ``sig1``, ``hmac-sha256``, ``keyid``
= the API key, ``nonce``, ``created``, ``expires``, covering ``@request-target``, ``@authority``, the three
``audiohook-*`` headers and ``x-api-key``) is checked by :func:`verify_signature` with the key's client secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

from ivr.serializers.base import (
    AudioIn,
    CallEvent,
    CallStart,
    CallStop,
    ChallengeOut,
    DecisionOut,
    EnrollmentOut,
    Frame,
    HangupOut,
    OutEvent,
    PromptOut,
    ProtocolError,
    Reply,
)

__all__ = [
    "PROBE_CONVERSATION",
    "REQUIRED_COMPONENTS",
    "AudioHookSerializer",
    "choose_offer",
    "signature_base",
    "verify_signature",
]

PROBE_CONVERSATION = "00000000-0000-0000-0000-000000000000"
REQUIRED_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
_FORMATS = {"PCMU": "mulaw", "L16": "l16"}
_MAX_SKEW_S = 300


def choose_offer(offers: Any) -> dict[str, Any]:
    """The first audio offer carrying the customer's ``external`` channel in a format we decode."""
    if not isinstance(offers, list) or not offers:
        raise ProtocolError("open.parameters.media must be a non-empty list of media offers")
    for offer in offers:
        if (
            isinstance(offer, dict)
            and offer.get("type") == "audio"
            and offer.get("format") in _FORMATS
            and isinstance(offer.get("channels"), list)
            and "external" in offer["channels"]
        ):
            return offer
    raise ProtocolError("no media offer carries the 'external' channel as PCMU or L16 audio")


class AudioHookSerializer:
    name = "audiohook"

    def __init__(self, session_id: str = "") -> None:
        self.session_id = session_id
        self.client_seq = 0
        self.server_seq = 0
        self.opened = False
        self.probe = False
        self.paused = False
        self.closing = False
        self.offer: dict[str, Any] = {}

    # -- inbound ------------------------------------------------------------------------------------------------
    def deserialize(self, data: Frame) -> CallEvent | None:
        if isinstance(data, bytes):
            if not self.opened:
                raise ProtocolError("binary audio before 'opened'")
            return None if self.paused or self.probe else AudioIn(data)
        msg = self._load(data)
        kind = msg["type"]
        params = msg.get("parameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError(f"'{kind}' parameters must be an object")
        if kind == "open":
            return self._open(msg, params)
        if not self.opened:
            raise ProtocolError(f"'{kind}' before 'open'")
        if kind == "ping":
            return Reply((self._msg("pong", {}),))
        if kind == "close":
            self.closing = True
            if self.probe:
                return Reply((self._msg("closed", {}),), then_close=True)
            return CallStop("close")
        if kind == "paused":
            self.paused = True
            return None
        if kind == "resumed":
            self.paused = False
            return None
        if kind in ("update", "discarded"):
            return None
        if kind == "error":
            raise ProtocolError(f"client error: {params.get('code', '')} {params.get('message', '')}".strip())
        raise ProtocolError(f"unknown AudioHook message type {kind!r}")

    def _load(self, data: str) -> dict[str, Any]:
        try:
            msg = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ProtocolError(f"frame is not JSON ({exc.msg} at {exc.pos})") from exc
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ProtocolError("message is not a JSON object with a string 'type'")
        if msg.get("version") != "2":
            raise ProtocolError(f'protocol version {msg.get("version")!r} is not supported; use "2"')
        seq = msg.get("seq")
        if not isinstance(seq, int) or seq != self.client_seq + 1:
            raise ProtocolError(f"seq {seq!r} out of order; expected {self.client_seq + 1}")
        serverseq = msg.get("serverseq", 0)
        if not isinstance(serverseq, int) or serverseq > self.server_seq:
            raise ProtocolError(f"serverseq {serverseq!r} is ahead of the last server seq {self.server_seq}")
        self.client_seq = seq
        if not self.session_id:
            self.session_id = str(msg.get("id", ""))
        return msg

    def _open(self, msg: dict[str, Any], params: dict[str, Any]) -> CallEvent:
        if self.opened:
            raise ProtocolError("a second 'open' on the same session")
        offer = choose_offer(params.get("media"))
        self.offer = offer
        self.opened = True
        opened = self._msg("opened", {"startPaused": False, "media": [offer]})
        if params.get("conversationId") == PROBE_CONVERSATION:
            self.probe = True
            return Reply((opened,))
        participant = params.get("participant") or {}
        custom = params.get("customConfig") or {}
        channels = list(offer["channels"])
        try:
            rate = int(offer.get("rate", 8000))
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"media offer rate {offer.get('rate')!r} is not a number") from exc
        if rate not in (8000, 16000):
            raise ProtocolError(f"media offer rate {rate} Hz is not supported; use 8000 or 16000")
        return CallStart(
            call_id=str(msg.get("id") or self.session_id),
            encoding=_FORMATS[str(offer["format"])],
            sample_rate=rate,
            channels=len(channels),
            channel=channels.index("external"),
            speaker_ref=str(custom.get("speaker_id", "")) if isinstance(custom, dict) else "",
            ani=str(participant.get("ani", "")) if isinstance(participant, dict) else "",
            params={"conversationId": str(params.get("conversationId", ""))},
            two_way=False,
            ack=(opened,),
        )

    # -- outbound -----------------------------------------------------------------------------------------------
    def serialize(self, event: OutEvent) -> list[Frame]:
        if self.probe:
            return []
        if isinstance(event, DecisionOut):
            data = {
                "decision": event.decision,
                "speech_seconds": event.speech_seconds,
                "decided_at_ms": event.decided_at_ms,
            }
            return [self._msg("event", {"entities": [{"type": "voiceauth.verification", "data": data}]})]
        if isinstance(event, EnrollmentOut):
            data = {"enrolled": event.enrolled, "progress": event.progress, "feedback": list(event.feedback)}
            return [self._msg("event", {"entities": [{"type": "voiceauth.enrollment", "data": data}]})]
        if isinstance(event, ChallengeOut):  # the platform speaks it: AudioHook carries no audio to the caller
            data = {"digits": event.digits, "attempt": event.attempt}
            return [self._msg("event", {"entities": [{"type": "voiceauth.challenge", "data": data}]})]
        if isinstance(event, PromptOut):
            return []  # AudioHook carries no audio to the caller
        if isinstance(event, HangupOut):
            if self.closing:
                return [self._msg("closed", {})]
            if not self.opened:
                return []
            return [self._msg("disconnect", {"reason": event.reason})]
        raise TypeError(f"cannot serialize {type(event).__name__}")

    def _msg(self, kind: str, parameters: dict[str, Any]) -> str:
        self.server_seq += 1
        return json.dumps(
            {
                "version": "2",
                "type": kind,
                "seq": self.server_seq,
                "clientseq": self.client_seq,
                "id": self.session_id,
                "parameters": parameters,
            }
        )


# -- HTTP message signature --------------------------------------------------------------------------------------
_MEMBER = re.compile(r"^\s*([a-z0-9_-]+)=(.*)$", re.IGNORECASE)


def _member(header: str, label: str) -> str | None:
    for part in re.split(r",(?=\s*[a-z0-9_-]+=)", header or ""):
        m = _MEMBER.match(part)
        if m and m.group(1) == label:
            return m.group(2).strip()
    return None


def signature_base(components: list[str], values: dict[str, str], signature_params: str) -> str:
    lines = [f'"{c}": {values[c]}' for c in components]
    lines.append(f'"@signature-params": {signature_params}')
    return "\n".join(lines)


def verify_signature(
    *,
    method: str,
    path: str,
    authority: str,
    headers: dict[str, str],
    secret: bytes,
    now: float | None = None,
) -> str:
    """ "" when the request's ``sig1`` signature is valid, else the reason it is not."""
    sig_input = _member(headers.get("signature-input", ""), "sig1")
    sig = _member(headers.get("signature", ""), "sig1")
    if not sig_input or not sig:
        return "request is not signed (no sig1 in Signature-Input / Signature)"
    m = re.match(r"^\(([^)]*)\)(.*)$", sig_input)
    if m is None:
        return "Signature-Input sig1 is malformed"
    components = re.findall(r'"([^"]+)"', m.group(1))
    params = dict(re.findall(r';\s*([a-z]+)=("?[^;"]*"?)', m.group(2)))
    params = {k: v.strip('"') for k, v in params.items()}
    missing = [c for c in REQUIRED_COMPONENTS if c not in components]
    if missing:
        return f"signature does not cover {', '.join(missing)}"
    if params.get("alg", "hmac-sha256") != "hmac-sha256":
        return f"signature alg {params.get('alg')!r} is not hmac-sha256"
    if params.get("keyid") != headers.get("x-api-key"):
        return "signature keyid is not the X-API-KEY"
    if not params.get("nonce"):
        return "signature has no nonce"
    t = time.time() if now is None else now
    try:
        created, expires = int(params["created"]), int(params["expires"])
    except (KeyError, ValueError):
        return "signature needs integer created and expires"
    if created > t + _MAX_SKEW_S or expires < t:
        return "signature is expired or not yet valid"
    values = {"@request-target": path, "@authority": authority}
    for c in components:
        if not c.startswith("@"):
            if c not in headers:
                return f"signed header {c} is missing"
            values[c] = headers[c]
        elif c not in values:
            return f"signature component {c} is not supported"
    base = signature_base(components, values, sig_input)
    expected = hmac.new(secret, base.encode(), hashlib.sha256).digest()
    try:
        given = base64.b64decode(sig.strip(":"), validate=True)
    except ValueError:
        return "signature is not base64"
    return "" if hmac.compare_digest(expected, given) else "signature does not match"
