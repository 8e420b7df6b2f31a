"""HTTP and WebSocket routes of the IVR edge: the three stream endpoints, the TwiML webhook and call outcomes.

Every stream belongs to a tenant and proves it at the handshake: L16 and AudioHook with the tenant's telephony API
key (AudioHook also with its signature), Twilio with an X-Twilio-Signature made with the tenant's own Twilio auth
token (``/v1/streams/twilio/{tenant}``, ``/v1/twiml/{tenant}``; :mod:`ivr.twilio_auth`). ``/v1/streams/twilio``
and ``/v1/twiml`` are aliases of ``VOICEAUTH_IVR_TENANT``'s (refused when it is not set). A refused handshake is
closed (1008) or answered 403, logged and audited with its reason, and never becomes a call.

Routes only translate: authentication at the handshake, then :func:`ivr.transport.serve_call` with the provider's
serializer and a :class:`ivr.session.CallSession`. The app provides an :class:`ivr.service.IvrService` as
``app.state.ivr`` (or a ``Pipeline`` as ``app.state.pipeline`` plus ``app.state.settings``, from which one is built
on first use). Telephony keys see decisions and timings, never scores.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ivr.serializers.audiohook import AudioHookSerializer, verify_signature
from ivr.serializers.base import CallStart, Frame, Serializer
from ivr.serializers.l16 import L16Serializer
from ivr.serializers.twilio import TwilioSerializer
from ivr.service import IvrService, KeyInfo, KeyResolver
from ivr.session import CallSession
from ivr.transport import CallRefused, serve_call
from ivr.twilio_auth import twilio_signature
from voiceauth.errors import NotFound, VoiceAuthError

__all__ = ["ServicesKeys", "get_ivr", "router", "twilio_signature"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["ivr"])


def get_ivr(app: Any) -> IvrService:
    """The app's IVR service: ``app.state.ivr``, else built once from the API's services (``app.state.services``,
    whose pipeline and API keys it uses) or from ``app.state.pipeline`` + ``app.state.settings``."""
    ivr = getattr(app.state, "ivr", None)
    if ivr is not None:
        return ivr
    services = getattr(app.state, "services", None)
    if services is not None:
        keys: KeyResolver | None = ServicesKeys(services)
        pipeline, settings = services.pipeline, services.settings
    else:
        pipeline, settings = getattr(app.state, "pipeline", None), getattr(app.state, "settings", None)
        keys = getattr(app.state, "keys", None)
        if pipeline is None or settings is None:
            raise RuntimeError("the app provides neither app.state.ivr, app.state.services nor app.state.pipeline")
    ivr = IvrService(
        settings,
        engine=pipeline.engine,
        verifier=pipeline.verifier,
        keys=keys,
        enroller=pipeline.enroller,
        countermeasure=getattr(pipeline, "countermeasure", None),
        recognizer=pipeline.digit_recognizer() if settings.ivr_liveness == "challenge" else None,
    )
    app.state.ivr = ivr
    return ivr


class ServicesKeys:
    """The API's own key table (``voiceauth keys create``) as an IVR :class:`~ivr.service.KeyResolver`."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def resolve(self, api_key: str) -> KeyInfo | None:
        principal = self.services.authenticate(api_key)
        if principal is None:
            return None
        secret = getattr(principal, "audiohook_secret", None)
        return KeyInfo(principal.tenant, str(getattr(principal.role, "value", principal.role)), secret)


async def _ivr_or_close(ws: WebSocket) -> IvrService | None:
    try:
        return get_ivr(ws.app)
    except VoiceAuthError as exc:  # e.g. the model is still loading
        log.warning("stream refused: %s", exc)
        await ws.close(code=1013)
        return None


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


class _Socket:
    """Starlette WebSocket -> :class:`ivr.transport.WebSocketLike`."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def receive(self) -> Frame | None:
        try:
            msg = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if msg["type"] == "websocket.disconnect":
            return None
        if msg.get("text") is not None:
            return str(msg["text"])
        return bytes(msg.get("bytes") or b"")

    async def send(self, frame: Frame) -> None:
        try:
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_text(frame)
        except WebSocketDisconnect as exc:  # the peer went away while we were talking
            raise ConnectionError(f"peer disconnected ({exc.code})") from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            await self.ws.close(code, reason)


async def _serve(ws: WebSocket, ivr: IvrService, serializer: Serializer, tenant_of: Any) -> None:
    admitted = False

    async def open_handler(start: CallStart) -> CallSession:
        nonlocal admitted
        tenant = tenant_of(start)
        if not start.probe and not admitted:
            if not ivr.admit():  # over capacity: refuse this call now rather than slow down every call
                raise CallRefused(f"this server is at its limit of {ivr.settings.ivr_max_calls} calls", "error")
            admitted = True
        return CallSession(ivr, start, tenant=tenant, protocol=serializer.name)

    try:
        await serve_call(_Socket(ws), serializer, open_handler, executor=ivr.executor, limits=ivr.limits)
    finally:
        if admitted:
            ivr.release()


# -- Twilio ----------------------------------------------------------------------------------------------------
def _address(conn: Request | WebSocket) -> str:
    return conn.client.host if conn.client is not None else ""


async def _off_loop(fn: Callable[..., str | None], *args: Any) -> str | None:
    """The credential lookup and the refusal's audit read and write the store: not on the event loop."""
    return await asyncio.to_thread(fn, *args)


def _twilio_verdict(
    ivr: IvrService, conn: Request | WebSocket, tenant: str | None, params: dict[str, str] | None = None
) -> str | None:
    """None when this Twilio request may go on for ``tenant``; else why it is refused (logged and audited)."""
    address, path = _address(conn), conn.url.path
    if ivr.over_auth_budget(address):
        log.warning("twilio request refused: %s is over its budget of refused handshakes", address)
        return "too many refused requests from this address"
    if tenant is None:
        reason = "no tenant in the path (use /v1/streams/twilio/{tenant}); VOICEAUTH_IVR_TENANT is not set"
    else:
        verdict = ivr.twilio.check(
            tenant,
            conn.headers.get("x-twilio-signature", ""),
            ivr.twilio.urls(str(conn.url), path, conn.url.query),
            params,
        )
        if verdict.ok:
            return None
        reason = verdict.reason
    ivr.refused("twilio", tenant, reason, address=address, path=path)
    return reason


async def _twilio_stream(ws: WebSocket, tenant: str | None) -> None:
    ivr = await _ivr_or_close(ws)
    if ivr is None:
        return
    if await _off_loop(_twilio_verdict, ivr, ws, tenant) is not None:
        await ws.close(code=1008)  # refused at the handshake (HTTP 403): never a call
        return
    assert tenant is not None
    await ws.accept()
    await _serve(ws, ivr, TwilioSerializer(), lambda start: tenant)


@router.websocket("/v1/streams/twilio/{tenant}")
async def twilio_stream(ws: WebSocket, tenant: str) -> None:
    """A tenant's Twilio Media Streams, signed with that tenant's Twilio auth token."""
    await _twilio_stream(ws, tenant)


@router.websocket("/v1/streams/twilio")
async def twilio_stream_alias(ws: WebSocket) -> None:
    """Alias of ``/v1/streams/twilio/{VOICEAUTH_IVR_TENANT}`` (refused when that is not set)."""
    ivr = await _ivr_or_close(ws)
    if ivr is not None:
        await _twilio_stream(ws, ivr.settings.ivr_tenant)


async def _twiml(request: Request, tenant: str | None, stream_path: str) -> Response:
    ivr = get_ivr(request.app)
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = {k: str(v) for k, v in (await request.form()).items()}
    reason = await _off_loop(_twilio_verdict, ivr, request, tenant, form)
    if reason is not None:
        return _problem(403, "Forbidden", reason)
    base = (ivr.settings.ivr_public_url or str(request.base_url)).rstrip("/")
    ws_base = base.replace("https://", "wss://").replace("http://", "ws://")
    params = {"speaker_id": request.query_params.get("speaker_id", ""), "from": form.get("From", "")}
    inner = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in params.items() if v)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f"<Stream url={quoteattr(ws_base + stream_path)}>{inner}</Stream>"
        "</Connect></Response>"
    )
    return Response(body, media_type="application/xml")


@router.post("/v1/twiml/{tenant}", response_class=Response)
async def twiml(request: Request, tenant: str) -> Response:
    """Answer a tenant's Twilio call with ``<Connect><Stream>`` to its stream endpoint, passing the claim and ANI."""
    return await _twiml(request, tenant, f"/v1/streams/twilio/{quote(tenant, safe='')}")


@router.post("/v1/twiml", response_class=Response)
async def twiml_alias(request: Request) -> Response:
    """Alias of ``/v1/twiml/{VOICEAUTH_IVR_TENANT}``, answering with the unscoped stream URL."""
    return await _twiml(request, get_ivr(request.app).settings.ivr_tenant, "/v1/streams/twilio")


# -- L16 --------------------------------------------------------------------------------------------------------
@router.websocket("/v1/streams/l16")
async def l16_stream(ws: WebSocket) -> None:
    ivr = await _ivr_or_close(ws)
    if ivr is None:
        return
    header_key = ws.headers.get("x-api-key", "")
    await ws.accept()
    serializer = L16Serializer()

    def tenant_of(start: CallStart) -> str:
        key = header_key or str(serializer.metadata.get("api_key", ""))
        address = _address(ws)
        info = None if ivr.over_auth_budget(address) else _resolve(ivr, key)
        if info is None or info.role not in ("telephony", "admin"):
            reason = "L16 stream without a valid telephony API key (X-API-KEY or metadata api_key)"
            ivr.refused("l16", None, reason, address=address, path=ws.url.path)
            raise CallRefused(reason)
        return info.tenant

    await _serve(ws, ivr, serializer, tenant_of)


def _resolve(ivr: IvrService, key: str) -> KeyInfo | None:
    if not key or ivr.keys is None:
        return None
    return ivr.keys.resolve(key)


# -- AudioHook --------------------------------------------------------------------------------------------------
@router.websocket("/v1/streams/audiohook")
async def audiohook_stream(ws: WebSocket) -> None:
    ivr = await _ivr_or_close(ws)
    if ivr is None:
        return
    address = _address(ws)
    info = None if ivr.over_auth_budget(address) else _resolve(ivr, ws.headers.get("x-api-key", ""))
    if info is None or info.role not in ("telephony", "admin"):
        ivr.refused("audiohook", None, "missing or unknown X-API-KEY", address=address, path=ws.url.path)
        await ws.close(code=1008)
        return
    if info.audiohook_secret is not None:
        problem = verify_signature(
            method="GET",
            path=ws.url.path + (f"?{ws.url.query}" if ws.url.query else ""),
            authority=ws.headers.get("host", ""),
            headers={k.lower(): v for k, v in ws.headers.items()},
            secret=info.audiohook_secret,
        )
        if problem:
            ivr.refused("audiohook", info.tenant, problem, address=address, path=ws.url.path)
            await ws.close(code=1008)
            return
    await ws.accept()
    serializer = AudioHookSerializer(session_id=ws.headers.get("audiohook-session-id", ""))
    await _serve(ws, ivr, serializer, lambda start: info.tenant)


# -- call outcomes ---------------------------------------------------------------------------------------------
def _caller(request: Request) -> KeyInfo | JSONResponse:
    ivr = get_ivr(request.app)
    key = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    info = _resolve(ivr, key)
    if info is None:
        return _problem(401, "Unauthorized", "send a valid API key in X-API-KEY")
    return info


@router.get("/v1/calls/{call_id}")
async def get_call(call_id: str, request: Request) -> Any:
    info = _caller(request)
    if isinstance(info, JSONResponse):
        return info
    ivr = get_ivr(request.app)
    try:
        outcome = (ivr.call_log or ivr.registry).get(info.tenant, call_id)
    except NotFound:  # the key's tenant has no rows at all
        outcome = None
    if outcome is None:
        return _problem(404, "Not Found", f"no call {call_id!r} for this tenant")
    return outcome.public() if info.role == "telephony" else outcome.full()


@router.get("/v1/calls")
async def list_calls(request: Request, speaker_id: str, limit: int = 50) -> Any:
    info = _caller(request)
    if isinstance(info, JSONResponse):
        return info
    ivr = get_ivr(request.app)
    try:
        found = (ivr.call_log or ivr.registry).for_speaker(info.tenant, speaker_id, limit=max(1, min(limit, 500)))
    except NotFound:
        found = []
    return {"calls": [c.public() if info.role == "telephony" else c.full() for c in found]}
