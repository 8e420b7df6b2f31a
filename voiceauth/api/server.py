"""Running the app under uvicorn with a graceful shutdown: SIGTERM drains calls before the server stops.

On the first SIGTERM (or SIGINT) the app's :class:`~voiceauth.api.middleware.Drain` starts: ``/readyz`` answers
503 (the load balancer stops routing here), new WebSocket calls are refused at the handshake, and requests and
calls already in flight go on until none is left or ``drain_s`` passed. Then uvicorn's own shutdown runs: it stops
listening, waits ``graceful_s`` for open HTTP requests, and closes what is left (a call still running after the
drain gets WebSocket close 1012, "service restart"). A second signal skips the drain.
"""

from __future__ import annotations

import logging
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voiceauth.api.middleware import Drain

__all__ = ["GracefulServer", "serve_app"]

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, drain_s: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_s = drain_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining or self.drain_s <= 0:
            super().handle_exit(sig, frame)
            return
        self.drain.start()
        log.warning(
            "signal %d: draining (%d requests, %d calls in flight; at most %g s)",
            sig,
            self.drain.requests,
            self.drain.calls,
            self.drain_s,
        )
        threading.Thread(target=self._finish, args=(sig, frame), name="voiceauth-drain", daemon=True).start()

    def _finish(self, sig: int, frame: FrameType | None) -> None:
        idle = self.drain.wait_idle(self.drain_s)
        log.warning("drain %s; shutting down", "complete" if idle else f"timed out after {self.drain_s:g} s")
        super().handle_exit(sig, frame)


def serve_app(app: FastAPI, *, host: str, port: int, drain_s: float, graceful_s: float = 5.0) -> None:
    """Serve ``app`` until a signal; ``app.state.drain`` is drained first (see the module docstring)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=int(graceful_s),
        ws_per_message_deflate=False,  # call audio does not compress; deflating prompts cost ~70% of the IVR loop
    )
    GracefulServer(config, app.state.drain, drain_s).run()
