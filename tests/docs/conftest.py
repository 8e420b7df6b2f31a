"""One real ``voiceauth serve`` for the documentation tests, started as ``make run`` starts it (the console script's
entry point, embedded defaults, demo keys printed), in a scratch data directory, with call outcomes posted to a
local webhook receiver, and with the one setting the integration pages tell the reader to change for trying calls
with the bundled recordings (``SERVER_ENV``; tests/docs/test_snippets.py checks the pages still say so)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


WEBHOOK_SECRET = "docs-webhook-secret-0123456789"


#: the integration pages' "try it" sections start the service with the passive IVR flow: a recording cannot answer
#: the default flow's liveness challenge (a fresh digit string)
SERVER_ENV = {"VOICEAUTH_IVR_LIVENESS": "off"}


@dataclass
class Webhook:
    url: str
    posts: list[tuple[dict[str, str], bytes]]  # (headers, body) of every POST received


@pytest.fixture(scope="session")
def webhook() -> Iterator[Webhook]:
    """A receiver for the service's call-outcome webhook (docs/integrate/call-outcomes.md)."""
    posts: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Webhook(f"http://127.0.0.1:{server.server_address[1]}/hook", posts)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class DocsServer:
    port: int
    base: str  # http://127.0.0.1:PORT
    keys: dict[str, str]  # role -> demo key printed at start
    data_dir: Path
    log: list[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def docs_server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, webhook: Webhook) -> Iterator[DocsServer]:
    data_dir = tmp_path_factory.mktemp("docs-data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEAUTH_")}  # the product's defaults
    env.update(SERVER_ENV)
    env.update(
        {"VOICEAUTH_MODEL_DIR": str(model_dir), "VOICEAUTH_OFFLINE": "true", "VOICEAUTH_DATA_DIR": str(data_dir)}
    )
    env.update({"VOICEAUTH_IVR_WEBHOOK_URL": webhook.url, "VOICEAUTH_IVR_WEBHOOK_SECRET": WEBHOOK_SECRET})
    cmd = [sys.executable, "-c", "from voiceauth.entry import main; main()", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while not any("listening" in ln for ln in lines):
            line = proc.stdout.readline()
            assert line, "voiceauth serve exited early:\n" + "".join(lines)
            lines.append(line)
        keys = dict(re.findall(r"^\s+(\w+) key:\s+(va_\S+)$", "".join(lines), flags=re.M))
        assert set(keys) == {"telephony", "security", "admin"}, "".join(lines)
        # keep reading the server's log (a full pipe would block it), for the failure messages
        out = proc.stdout
        threading.Thread(target=lambda: lines.extend(iter(out.readline, "")), daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, "voiceauth serve exited before it was ready:\n" + "".join(lines[-40:])
            try:
                if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "voiceauth serve was not ready within 300 s"
            time.sleep(0.5)
        yield DocsServer(port, base, keys, data_dir, lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture()
def snippet_env(docs_server: DocsServer) -> dict[str, str]:
    """The shell environment the snippets run in: the reader's, pointed at the service's store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEAUTH_")}
    env["VOICEAUTH_DATA_DIR"] = str(docs_server.data_dir)
    return env


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A scratch directory that reads like the repository root (``.venv``, ``audio_samples``)."""
    for name in (".venv", "audio_samples"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path
