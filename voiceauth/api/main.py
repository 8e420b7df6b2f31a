"""The FastAPI application factory.

    app = create_app(settings)                          # production: store and model from settings
    app = create_app(settings, engine=FakeEngine(), store=store, clock=clock)   # tests

With no ``engine`` the model is loaded on a thread when the app starts (``/readyz`` answers 503 until then).
``app.state.drain`` (:class:`~voiceauth.api.middleware.Drain`) is what ``voiceauth serve`` starts on SIGTERM.
All ``/v1`` routes need ``Authorization: Bearer <api key>``; errors are ``application/problem+json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI

from ivr.routes import router as ivr_router
from voiceauth.api.middleware import Drain, DrainMiddleware, LimitsMiddleware
from voiceauth.api.problems import install_problem_handlers
from voiceauth.api.routes import admin, audio, callers, challenges, health, security, speakers
from voiceauth.api.services import AppServices
from voiceauth.config import Settings
from voiceauth.console.routes import router as console_router
from voiceauth.embedding.base import EmbeddingEngine
from voiceauth.pipeline import FrontEndLike
from voiceauth.scoring.base import Scorer
from voiceauth.store.repo import Clock, Store, open_store, utcnow

__all__ = ["create_app"]

log = logging.getLogger(__name__)

#: room for multipart framing and form fields around the largest accepted audio upload
_MULTIPART_OVERHEAD = 64 * 1024

_DESCRIPTION = """\
Voice-biometrics authentication for contact centres: enrol callers (with consent), verify a claimed identity
from their voice, manage thresholds, a fraudster watchlist, privacy operations and a hash-chained audit log.

Every `/v1` call needs `Authorization: Bearer <api key>`. Roles: `telephony` (enrol, verify; decisions only),
`security` (scores, thresholds, audit, watchlist), `admin` (tenants, keys). A key only reaches its own tenant.
Errors are `application/problem+json` (RFC 9457) with a stable `type` (`urn:voiceauth:problem:<code>`).
"""


def create_app(
    settings: Settings,
    *,
    engine: EmbeddingEngine | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    scorer: Scorer | None = None,
    operating_points: Mapping[str, float] | None = None,
    frontend: FrontEndLike | None = None,
    watch_data_keys: bool | None = None,
) -> FastAPI:
    """The HTTP API over one store; components not given are built from ``settings``.

    ``watch_data_keys`` (default: when the store is built here) re-reads the data-key file while running.
    """
    clock = clock or (store.clock if store is not None else utcnow)
    owns_store = store is None
    store = store or open_store(settings, clock=clock)
    services = AppServices(
        settings,
        store,
        clock=clock,
        engine=engine,
        scorer=scorer,
        operating_points=dict(operating_points) if operating_points is not None else None,
        frontend=frontend,
        owns_store=owns_store,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        loading = None
        if not services.model_loaded:
            loading = asyncio.get_running_loop().run_in_executor(None, services.load_engine)
        if watch_data_keys if watch_data_keys is not None else owns_store:
            tasks.append(asyncio.create_task(_watch_keys(services)))
        try:
            if loading is not None:
                await loading
            yield
        finally:
            for t in tasks:
                t.cancel()
            services.close()

    app = FastAPI(
        title="voiceauth",
        version="0.1.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "speakers", "description": "Callers by external reference, consent, privacy operations."},
            {"name": "enrolment and verification", "description": "Audio uploads (multipart field `audio`)."},
        ],
    )
    app.state.services = services
    app.state.drain = Drain()
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(speakers.router)
    app.include_router(audio.router)
    app.include_router(challenges.router)
    app.include_router(security.router)
    app.include_router(admin.router)
    app.include_router(callers.router)
    app.include_router(console_router)
    app.include_router(ivr_router)
    app.add_middleware(
        LimitsMiddleware,
        max_body=settings.max_upload_bytes + _MULTIPART_OVERHEAD,
        timeout_s=settings.api_request_timeout_s,
        metrics=services.metrics,
    )
    app.add_middleware(DrainMiddleware, drain=app.state.drain)  # outermost: counts everything in flight
    return app


async def _watch_keys(services: AppServices) -> None:
    """Re-read the data-key file when it changes (``voiceauth keys rotate-data-key`` without a restart)."""
    while True:
        await asyncio.sleep(services.settings.api_key_reload_s)
        try:
            await asyncio.to_thread(services.reload_keys_if_changed)
        except Exception:  # noqa: BLE001 - a bad key file must not stop the service; keep the loaded keys
            log.exception("could not reload the data keys; keeping the loaded ones")
