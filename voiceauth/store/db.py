"""Database edge: engines for SQLite (embedded, WAL) and PostgreSQL, and migrations applied on start.

SQLite runs in WAL mode with foreign keys on; every transaction begins ``IMMEDIATE`` so read-modify-write
sequences (voiceprint updates, lockout counters, the audit chain) are serialised between processes. On PostgreSQL
the same sequences take row locks (``SELECT ... FOR UPDATE``) and migrations an advisory lock.

PostgreSQL connections are checked before use (``pool_pre_ping``: a connection the server dropped, e.g. on a
restart, is replaced rather than failing the request) and a new connection that cannot be made is retried with
exponential backoff for ``connect_retry_s`` before the error reaches the caller (the API answers 503 then).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from voiceauth.config import Settings
from voiceauth.errors import ConfigError

if TYPE_CHECKING:
    from voiceauth.store.crypto import Keyring

__all__ = ["DB_FILE_NAME", "create_db_engine", "database_url", "migrate", "single_connect_attempt"]

log = logging.getLogger(__name__)

DB_FILE_NAME = "voiceauth.db"
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x766F6963  # arbitrary constant: "voic"


def database_url(settings: Settings) -> str:
    """``settings.database_url``, or SQLite in the data directory (created if missing)."""
    if settings.database_url:
        return settings.database_url
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+pysqlite:///{data_dir / DB_FILE_NAME}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_retry_connect: ContextVar[bool] = ContextVar("voiceauth_db_retry_connect", default=True)


@contextmanager
def single_connect_attempt() -> Iterator[None]:
    """Within this block a failed connect is not retried (readiness probes must answer fast, not wait it out)."""
    token = _retry_connect.set(False)
    try:
        yield
    finally:
        _retry_connect.reset(token)


def _connect_with_backoff(retry_s: float, connect_timeout_s: float) -> Any:
    """A ``do_connect`` listener: the driver's connect, retried with exponential backoff for ``retry_s`` in all."""

    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        cparams.setdefault("connect_timeout", max(1, round(connect_timeout_s)))
        deadline = time.monotonic() + (retry_s if _retry_connect.get() else 0.0)
        delay = 0.05
        attempt = 0
        while True:
            attempt += 1
            try:
                return dialect.loaded_dbapi.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                log.warning("database connection failed (attempt %d); retrying in %.2f s", attempt, min(delay, left))
                time.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)

    return do_connect


def create_db_engine(
    url: str, *, connect_retry_s: float = 5.0, connect_timeout_s: float = 3.0, pool_size: int = 10
) -> Engine:
    """An engine for ``url`` (``sqlite...`` or ``postgresql...``), configured for the store.

    ``connect_retry_s``/``connect_timeout_s``/``pool_size`` apply to PostgreSQL (see the module docstring).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} is not a valid SQLAlchemy URL") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size, pool_timeout=10)
        event.listen(engine, "do_connect", _connect_with_backoff(connect_retry_s, connect_timeout_s))
        return engine
    raise ConfigError(f"database backend {backend!r} is not supported; use sqlite or postgresql")


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def migrate(engine: Engine, keyring: Keyring | None = None) -> None:
    """Bring the schema to the newest revision (idempotent; safe when several workers start at once).

    ``keyring``: the data keys, for revisions that re-encrypt rows (0008); without them such a revision refuses to
    run on a database holding encrypted rows."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        cfg.attributes["keyring"] = keyring
        command.upgrade(cfg, "head")
    log.info("store schema at head (%s)", engine.dialect.name)


def _revision(message: str, url: str) -> None:  # developer tool: autogenerate a new revision
    engine = create_db_engine(url)
    migrate(engine)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


if __name__ == "__main__":  # python -m voiceauth.store.db revision "message" [url]
    if len(sys.argv) < 3 or sys.argv[1] != "revision":
        raise SystemExit('usage: python -m voiceauth.store.db revision "message" [database url]')
    _revision(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "sqlite+pysqlite:///:memory:")
