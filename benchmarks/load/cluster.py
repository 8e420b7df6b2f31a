"""Worker processes for load and fault runs: ``voiceauth serve`` subprocesses on loopback sharing one database.

    with Cluster.start(database_url, workers=2, tmp_dir=tmp) as cluster:
        cluster.workers[0].kill()        # SIGKILL, as a crashed host
        cluster.restart(0)               # same port, waits for /readyz

Each worker gets the same data key and settings through ``VOICEAUTH_*`` variables (the production shape),
loads the real model, and logs to ``tmp_dir/<name>.log``.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from voiceauth.config import Settings
from voiceauth.store.crypto import Keyring
from voiceauth.store.db import create_db_engine
from voiceauth.store.keys import create_api_key
from voiceauth.store.repo import Store

__all__ = ["Cluster", "Keys", "Worker", "free_port", "open_store"]

#: what every load worker runs with (small thread counts: two workers share this machine's cores)
BASE_ENV = {
    "VOICEAUTH_OFFLINE": "true",
    "VOICEAUTH_GENERATE_DATA_KEY": "false",
    "VOICEAUTH_NUM_THREADS": "1",
    "VOICEAUTH_API_AUDIO_WORKERS": "2",
    "VOICEAUTH_IVR_WORKERS": "2",
    "VOICEAUTH_ENROLL_MIN_SPEECH_S": "6",
    "VOICEAUTH_ENROLL_TARGET_SPEECH_S": "12",
    "VOICEAUTH_API_RATE_LIMIT_PER_MINUTE": "100000",
    "VOICEAUTH_API_RATE_LIMIT_BURST": "1000",
    "VOICEAUTH_IVR_TENANT": "load",
    "VOICEAUTH_API_DRAIN_S": "20",
    # the load's callers play recorded digit strings, which cannot answer a fresh liveness challenge: the passive
    # flow (tests/liveness runs the challenge step)
    "VOICEAUTH_IVR_LIVENESS": "off",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_store(database_url: str, data_key: bytes) -> Store:
    """The test side's own view of the workers' store (same database, same data key)."""
    return Store(create_db_engine(database_url), Keyring([data_key]))


@dataclass(frozen=True)
class Keys:
    tenant: str
    telephony: str
    security: str
    twilio: str  # the tenant's Twilio auth token (stored on its telephony key): Twilio streams are signed with it


def create_keys(store: Store, tenant: str) -> Keys:
    twilio = secrets.token_hex(16)  # shaped like a Twilio auth token
    with store.transaction() as tx:
        t = tx.get_or_create_tenant(tenant, actor="load")
        tel = create_api_key(tx, t.id, "telephony", label="load", actor="load", twilio_auth_token=twilio)[1]
        sec = create_api_key(tx, t.id, "security", label="load", actor="load")[1]
    return Keys(tenant, tel, sec, twilio)


@dataclass
class Worker:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        exe = Path(sys.executable).with_name("voiceauth")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from voiceauth.cli import app; app()"]
        cmd += ["serve", "--no-demo", "--host", "127.0.0.1", "--port", str(self.port)]
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n=== start {self.starts} ===\n".encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no cleanup (a crashed process or host)."""
        if self.proc is not None and self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (graceful: drains), then wait for the exit status."""
        if self.proc is None or not self.alive():
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"worker {self.name} exited ({self.proc and self.proc.returncode}); see {self.log_path}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker {self.name} not ready after {timeout_s:g} s; see {self.log_path}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    database_url: str
    data_key: bytes
    keys: Keys
    store: Store
    workers: list[Worker] = field(default_factory=list)

    @classmethod
    @contextmanager
    def start(
        cls,
        database_url: str,
        *,
        tmp_dir: Path,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
        ready_timeout_s: float = 120.0,
    ) -> Iterator[Cluster]:
        """Keys in a fresh store, then ``workers`` processes (started together), each ready; all stopped after."""
        data_key = secrets.token_bytes(32)
        store = open_store(database_url, data_key)  # migrates once, before the workers race to
        keys = create_keys(store, BASE_ENV["VOICEAUTH_IVR_TENANT"])
        cluster = cls(database_url, data_key, keys, store)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEAUTH_")}
        child_env.update(BASE_ENV)
        child_env.update(
            {
                "VOICEAUTH_DATABASE_URL": database_url,
                "VOICEAUTH_DATA_KEY": base64.b64encode(data_key).decode(),
                "VOICEAUTH_HOME": str(Settings().home),  # the fetched models
            }
        )
        child_env.update(env or {})
        try:
            for i in range(workers):
                name = f"w{i + 1}"
                wenv = dict(child_env, VOICEAUTH_DATA_DIR=str(tmp_dir / name))
                w = Worker(name, free_port(), wenv, tmp_dir / f"{name}.log")
                w.spawn()
                cluster.workers.append(w)
            for w in cluster.workers:
                w.wait_ready(ready_timeout_s)
            yield cluster
        finally:
            for w in cluster.workers:
                w.kill()
            store.dispose()

    def restart(self, index: int, ready_timeout_s: float = 120.0) -> None:
        w = self.workers[index]
        w.kill()
        w.spawn()
        w.wait_ready(ready_timeout_s)
