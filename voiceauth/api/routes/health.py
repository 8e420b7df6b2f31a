"""Unauthenticated operations endpoints: liveness, readiness (model loaded, store reachable), Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from voiceauth.api.deps import get_services
from voiceauth.api.services import AppServices

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Model still loading, store unreachable or draining."}})
def readyz(request: Request, svc: AppServices = Depends(get_services)) -> JSONResponse:
    """Ready for traffic: the speaker model is loaded, the store answers and the worker is not shutting down."""
    model, store = svc.model_loaded, svc.store_reachable()
    draining = bool(getattr(getattr(request.app.state, "drain", None), "draining", False))
    ok = model and store and not draining
    return JSONResponse(
        {
            "status": "ready" if ok else "not ready",
            "model_loaded": model,
            "store_reachable": store,
            "draining": draining,
        },
        status_code=200 if ok else 503,
    )


@router.get("/metrics", response_class=Response)
def metrics(svc: AppServices = Depends(get_services)) -> Response:
    """Prometheus metrics: request latency, decisions by state, enrolment progress, model latency."""
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)
