"""Errors as ``application/problem+json`` (RFC 9457): one stable ``type`` per error, the status decided here.

``type`` is ``urn:voiceauth:problem:<code>`` where ``code`` is the error's stable code (the
:class:`~voiceauth.errors.VoiceAuthError` subclass's ``code``, or one of the API's own below). ``detail`` is the
library's message (for audio errors, the front end's explanation of what was wrong and what is accepted), never
a traceback. Unexpected exceptions become a generic 500 whose detail reveals nothing; none are expected.

Database failures are never a 500 and never a decision: the unit of work was rolled back, so the client may
retry. A lost or unreachable database (or an exhausted connection pool) answers 503 ``store-unavailable`` with
``Retry-After``; a full disk under SQLite 503 ``store-full``; a concurrent request that created the same row first
(unique constraint) 409 ``conflict``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from voiceauth import errors as E

__all__ = ["PROBLEM_JSON", "ApiProblem", "install_problem_handlers", "problem_response", "problem_type", "status_of"]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE = "urn:voiceauth:problem:"

#: error class -> HTTP status; the most specific class listed wins (checked along the MRO)
_STATUS: dict[type[E.VoiceAuthError], int] = {
    E.AudioLimitExceeded: 413,
    E.UnsupportedFormat: 415,
    E.AudioDecodeError: 422,
    E.InvalidSamples: 422,
    E.NoSpeech: 422,
    E.AudioError: 422,
    E.EmbeddingError: 422,
    E.NotFound: 404,
    E.AlreadyExists: 409,
    E.ConsentRequired: 409,
    E.VoiceprintUnreadable: 409,
    E.DataKeyError: 503,
    E.AuditChainBroken: 500,
    E.StoreError: 400,
    E.ChallengeUnknown: 404,
    E.ChallengeUsed: 409,
    E.ChallengeExpired: 410,
    E.ChallengeError: 400,
    E.ConfigError: 400,
    E.ModelError: 503,
}
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Gateway timeout",
}
#: messages safe to show for server-side failures (the library's text may name files or keys)
_HIDDEN_DETAIL = {
    E.DataKeyError: "the voiceprint store cannot decrypt or encrypt right now; try again shortly",
    E.AuditChainBroken: "the audit log failed verification; security staff have to investigate",
    E.ModelError: "the speaker model is not available; try again shortly",
}


class ApiProblem(Exception):
    """An error the API raises itself (auth, roles, rate limit, size and time limits)."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = dict(headers or {})
        self.extra = extra


def problem_type(code: str) -> str:
    return _TYPE + code


def status_of(exc: E.VoiceAuthError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _voiceauth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, E.VoiceAuthError)
    status = status_of(exc)
    detail = str(exc)
    for cls, text in _HIDDEN_DETAIL.items():
        if isinstance(exc, cls) and not isinstance(exc, E.VoiceprintUnreadable):  # that one's detail is safe
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
            detail = text
    return problem_response(status, exc.code, detail, instance=request.url.path)


def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        exc.status, exc.code, exc.detail, instance=request.url.path, headers=exc.headers, **exc.extra
    )


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    first = errs[0] if errs else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc']) or 'request'}: {first['msg']}"
    return problem_response(422, "invalid-request", detail, instance=request.url.path, errors=errs)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "no-such-path", 405: "method-not-allowed"}
    code = codes.get(exc.status_code, f"http-{exc.status_code}")
    return problem_response(
        exc.status_code, code, str(exc.detail), instance=request.url.path, headers=getattr(exc, "headers", None)
    )


_RETRY = {"Retry-After": "2"}


def _database(request: Request, exc: Exception) -> JSONResponse:
    path = request.url.path
    if isinstance(exc, IntegrityError):
        log.warning("concurrent change on %s: %s", path, type(exc.orig).__name__)
        return problem_response(
            409, "conflict", "a concurrent request changed the same record first; retry", instance=path
        )
    if isinstance(exc, DBAPIError) and "disk is full" in str(exc.orig):  # SQLite: SQLITE_FULL
        log.error("store full on %s", path)
        return problem_response(
            503,
            "store-full",
            "the voiceprint store has no space left; nothing was stored, retry later",
            instance=path,
            headers=_RETRY,
        )
    log.error("database unavailable on %s: %s", path, type(exc).__name__)
    return problem_response(
        503,
        "store-unavailable",
        "the voiceprint store is not reachable; try again shortly",
        instance=path,
        headers=_RETRY,
    )


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal-error", "an unexpected error occurred", instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(E.VoiceAuthError, _voiceauth_error)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for db_error in (OperationalError, InterfaceError, IntegrityError, DisconnectionError, PoolTimeout):
        app.add_exception_handler(db_error, _database)
    app.add_exception_handler(Exception, _unexpected)
