"""Prometheus metrics of one app instance (own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ApiMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_latency = Histogram(
            "voiceauth_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "voiceauth_verification_decisions", "Verification decisions by result state.", ["decision"], registry=r
        )
        self.enrollments = Counter(
            "voiceauth_enrollment_utterances", "Enrolment utterances by outcome.", ["outcome"], registry=r
        )
        self.enrollment_progress = Histogram(
            "voiceauth_enrollment_progress_percent",
            "Enrolment progress (0-100) after each enrolment request.",
            buckets=(10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
            registry=r,
        )
        self.model_latency = Histogram(
            "voiceauth_model_embed_seconds",
            "Speaker-embedding model latency per utterance.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.frontend_latency = Histogram(
            "voiceauth_frontend_seconds",
            "Audio front-end (decode, resample, VAD) latency.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.watchlist_hits = Counter("voiceauth_watchlist_hits", "Watchlist matches.", ["operation"], registry=r)
        self.auth_failures = Counter("voiceauth_auth_failures", "Refused API keys.", ["reason"], registry=r)
        self.rate_limited = Counter("voiceauth_rate_limited", "Requests refused by the per-key rate limit.", registry=r)
        self.model_loaded = Gauge("voiceauth_model_loaded", "1 when the speaker model is loaded.", registry=r)
        r.register(_EmbeddingBackendCollector())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EmbeddingBackendCollector(Collector):
    """``voiceauth_embedding_backend_info{backend, method, reason}`` = 1: the embedding backend this process
    built last and why (``method``: measured / cached calibration, or static); nothing before one is built."""

    def collect(self) -> Iterator[Metric]:
        from voiceauth.embedding.autoselect import current_selection

        family = GaugeMetricFamily(
            "voiceauth_embedding_backend_info",
            "The embedding backend in use (1) and why: measured or cached calibration of auto, or static.",
            labels=["backend", "method", "reason"],
        )
        sel = current_selection()
        if sel is not None:
            family.add_metric([sel.backend, sel.method, sel.reason[:300]], 1.0)
        yield family
