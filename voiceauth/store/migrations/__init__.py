"""Alembic migrations of the voiceprint store, applied programmatically by ``voiceauth.store.db.migrate``."""
