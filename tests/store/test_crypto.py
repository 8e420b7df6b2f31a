"""Data keys: sources, validation, rotation file, and one dev key even when workers start together."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from voiceauth.config import Settings
from voiceauth.errors import ConfigError, DataKeyError
from voiceauth.store.crypto import Keyring, add_key_to_file, key_id_of, load_keyring


def b64(k: bytes) -> str:
    return base64.b64encode(k).decode()


def test_keys_from_settings_value_and_file(tmp_path: Path) -> None:
    k1, k2 = b"\x01" * 32, b"\x02" * 32
    ring = load_keyring(Settings(data_key=SecretStr(f"{b64(k1)}, {b64(k2)}"), data_dir=tmp_path))
    assert ring.active_id == key_id_of(k1) and ring.ids == (key_id_of(k1), key_id_of(k2))
    f = tmp_path / "keys.txt"
    f.write_text(f"# comment\n{b64(k2)}\n")
    assert load_keyring(Settings(data_key_file=f, data_dir=tmp_path)).active_id == key_id_of(k2)
    assert not (tmp_path / "data.key").exists()  # a configured key never triggers generation


@pytest.mark.parametrize(
    ("value", "message"),
    [("not base64!", "not valid base64"), (b64(b"\x00" * 16), "16 bytes; AES-256 needs exactly 32")],
)
def test_bad_keys_are_refused_with_a_reason(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(DataKeyError, match=message):
        load_keyring(Settings(data_key=SecretStr(value), data_dir=tmp_path))


def test_production_refuses_to_generate_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VOICEAUTH_DATA_KEY"):
        load_keyring(Settings(data_dir=tmp_path, generate_data_key=False))


def test_workers_starting_together_share_one_generated_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: load_keyring(Settings(data_dir=tmp_path)).active_id, range(16)))
    assert len(ids) == 1 and [p.name for p in tmp_path.iterdir()] == ["data.key"]


def test_rotation_file_keeps_old_keys_for_decryption(tmp_path: Path) -> None:
    old = load_keyring(Settings(data_dir=tmp_path))
    vec = np.arange(192, dtype=np.float32)
    kid, blob = old.encrypt_vector(vec, b"row")
    new_id = add_key_to_file(tmp_path / "data.key")
    ring = load_keyring(Settings(data_dir=tmp_path))
    assert ring.active_id == new_id != kid and kid in ring.ids
    np.testing.assert_array_equal(ring.decrypt_vector(kid, blob, b"row"), vec)
    with pytest.raises(DataKeyError, match="authentication"):
        ring.decrypt_vector(kid, blob, b"another row")
    with pytest.raises(DataKeyError, match="truncated"):
        ring.decrypt(kid, blob[:10], b"row")
    with pytest.raises(DataKeyError, match="at least one"):
        Keyring([])
