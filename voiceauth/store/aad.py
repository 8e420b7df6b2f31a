"""Associated data (AES-GCM AAD) of the store's ciphertexts: every label kept beside a ciphertext is bound into it.

A ciphertext authenticates its row's context as canonical JSON: the table and column, the owner (speaker or
tenant), the id of the data key that made it and every label stored next to it that changes how it is read (the
embedding network ``space``, the telephone or full band, ``narrowband``, a watchlist entry's label). A row whose
label was edited in the database, or a ciphertext moved to another row, then fails its integrity check instead of
being read under the wrong network or for the wrong speaker.

Since migration 0008 (which re-encrypted every older row); the AAD of the rows written before it is frozen in that
migration. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["api_secret_aad", "embedding_aad", "watchlist_aad"]

#: the AAD format version (a bump needs a migration that re-encrypts, as 0008 did)
AAD_VERSION = 2


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps({"v": AAD_VERSION, **fields}, sort_keys=True, separators=(",", ":")).encode()


def embedding_aad(
    table: str, speaker_id: int, *, key_id: str, space: str | None, narrowband: bool, wide: bool = False
) -> bytes:
    """A speaker's embedding (``enrollment_utterances`` or ``voiceprints``): ``wide`` for the full-band column.

    ``space`` is the column as stored (None for rows from before 0006, read as the released network)."""
    return _canonical(
        {
            "table": table,
            "col": "embedding_wide" if wide else "embedding",
            "speaker": speaker_id,
            "key": key_id,
            "space": space,
            "narrowband": bool(narrowband),
        }
    )


def watchlist_aad(tenant_id: int, *, key_id: str, space: str | None, label: str) -> bytes:
    """A watchlist entry's embedding: its tenant, data key, network and label."""
    fields = {"table": "watchlist_entries", "col": "embedding", "tenant": tenant_id, "key": key_id, "space": space}
    return _canonical({**fields, "label": label})


def api_secret_aad(column: str, key_row_id: int, *, tenant_id: int, key_id: str) -> bytes:
    """A secret kept on an API key row (``audiohook_secret``, ``twilio_auth_token``): the row, its tenant and the
    data key."""
    return _canonical({"table": "api_keys", "col": column, "row": key_row_id, "tenant": tenant_id, "key": key_id})
