"""Read the SQLite database (and its WAL) byte by byte: no embedding may be found in plaintext."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np

from enrollment.session import Enroller
from voiceauth.audio.types import Quality
from voiceauth.config import Settings
from voiceauth.scoring.base import CosineScorer
from voiceauth.store.db import DB_FILE_NAME
from voiceauth.store.repo import open_store
from voiceauth.store.testing import FakeClock
from voiceauth.watchlist import COSINE_OPERATING_POINTS

Q = Quality(net_speech_s=4.0, snr_db=30.0, clipping_ratio=0.0, level_dbfs=-20.0)


def file_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(DB_FILE_NAME + "*")))


def contains_vector(haystack: bytes, vec: np.ndarray) -> bool:
    raw = np.asarray(vec, dtype="<f4").tobytes()
    # the whole vector, or any 8-float window of it, in little- or big-endian order
    needles = [raw] + [raw[i : i + 32] for i in range(0, len(raw) - 32, 32)]
    needles += [np.asarray(vec, dtype=">f4").tobytes()[:32]]
    return any(n in haystack for n in needles)


def test_no_plaintext_embedding_in_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, home=tmp_path)  # embedded default: SQLite + generated dev key
    store = open_store(settings, clock=FakeClock())
    enroller = Enroller(store, CosineScorer(), COSINE_OPERATING_POINTS)
    enroller.register("acme", "alice", consent_method="ivr", consent_text_version="v1", actor="t")
    rng = np.random.default_rng(3)
    base = rng.standard_normal(192)
    sent = []
    for _ in range(3):
        e = base + 0.1 * rng.standard_normal(192)
        e = (e / np.linalg.norm(e)).astype(np.float32)
        sent.append(e)
        assert enroller.enroll("acme", "alice", e, Q, narrowband=False).accepted
    with store.transaction() as tx:
        fraud = sent[0] * -1
        tx.add_watchlist_entry(tx.tenant("acme").id, "fraud", fraud, actor="sec")
        vp = tx.voiceprint(tx.require_speaker(tx.tenant("acme").id, "alice"))
    assert vp is not None
    store.dispose()
    assert (tmp_path / DB_FILE_NAME).exists()
    assert (tmp_path / "data.key").stat().st_mode & 0o077 == 0  # the generated dev key is private
    assert store.keyring.active_id in repr(store.keyring)
    key_text = (tmp_path / "data.key").read_text().splitlines()[-1]
    assert key_text not in repr(store.keyring)
    with closing(sqlite3.connect(tmp_path / DB_FILE_NAME)) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    haystack = file_bytes(tmp_path)
    for v in [*sent, vp.embedding, fraud]:
        assert not contains_vector(haystack, v)
    # the search itself works: a plaintext copy written into the same file is found
    con = sqlite3.connect(tmp_path / DB_FILE_NAME)
    con.execute("CREATE TABLE leak (b BLOB)")
    con.execute("INSERT INTO leak VALUES (?)", (np.asarray(vp.embedding, dtype="<f4").tobytes(),))
    con.commit()
    con.close()
    assert contains_vector(file_bytes(tmp_path), vp.embedding)
