"""Alembic environment: runs on the connection handed over by ``voiceauth.store.db.migrate``.

To write a new revision after changing ``voiceauth/store/models.py``::

    .venv/bin/python -m voiceauth.store.db revision "what changed"
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from voiceauth.store.models import Base

config = context.config
connection = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite can only ALTER through table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection or sqlalchemy.url given to the voiceauth migrations")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
