"""A private, throw-away PostgreSQL server for fault runs that restart the database.

Never the shared cluster on 127.0.0.1:5432: this one is ``initdb``-ed into a temporary directory and listens on
a free loopback port. PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` OS user.
:class:`PostgresUnavailable` says why when it cannot be started (no server binaries, no such user).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load.cluster import free_port
from voiceauth.store.testing import PostgresUnavailable

__all__ = ["PrivatePostgres", "private_postgres"]


@dataclass
class PrivatePostgres:
    bindir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-o", opts, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back open transactions and disconnect clients (what a restart does to the service)."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise PostgresUnavailable("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) are not installed")
    run_as = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailable("running as root and there is no 'postgres' OS user to run the server") from exc
        run_as = "postgres"
    root = Path(tempfile.mkdtemp(prefix="voiceauth-pg-"))
    if run_as:
        os.chown(root, user.pw_uid, user.pw_gid)
    pg = PrivatePostgres(found[-1].parent, root, free_port(), run_as)
    try:
        pg._run("initdb", "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        pg.start()
        try:
            yield pg
        finally:
            try:
                pg.stop("immediate")
            except PostgresUnavailable:
                pass
    finally:
        shutil.rmtree(root, ignore_errors=True)
