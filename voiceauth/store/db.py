"""Database edge: engines for SQLite (embedded, WAL) and PostgreSQL, and migrations applied on start.

SQLite runs in WAL mode with foreign keys on; every transaction begins ``IMMEDIATE`` so read-modify-write
sequences (voiceprint updates, lockout counters, the audit chain) are serialised between processes. On PostgreSQL
the same sequences take row locks (``SELECT ... FOR UPDATE``) and migrations an advisory lock.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from voiceauth.config import Settings
from voiceauth.errors import ConfigError

__all__ = ["DB_FILE_NAME", "create_db_engine", "database_url", "migrate"]

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


def create_db_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite...`` or ``postgresql...``), configured for the store."""
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
        return create_engine(url, pool_pre_ping=True)
    raise ConfigError(f"database backend {backend!r} is not supported; use sqlite or postgresql")


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe when several workers start at once)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
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
