"""The telephone-channel adaptation: verified shipped tensors, used for telephone-band audio only, and it does
what it was trained for on readers it never saw (its telephone-band embedding lands nearer the full-band one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from voiceauth.embedding.backends import FusedEngine
from voiceauth.embedding.ecapa import load_checkpoint
from voiceauth.embedding.telephone import ADAPTED_PREFIXES, ADAPTER_DIR, adapted_state, adapter_digest, load_adapter
from voiceauth.errors import ModelChecksumMismatch, ModelError, ModelFileMissing
from voiceauth.scoring.evalsets import librispeech_pieces, load_librispeech, split_readers

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def fused_tel(model_dir: Path) -> FusedEngine:
    return FusedEngine(model_dir, mode="fp32", device="cpu", verify=False, telephone_adapter=ADAPTER_DIR)


def test_adapter_holds_only_the_first_two_blocks_in_ecapa_shapes(model_dir: Path) -> None:
    adapter = load_adapter()
    base = load_checkpoint(model_dir / "embedding_model.ckpt")
    assert adapter and all(k.startswith(ADAPTED_PREFIXES) for k in adapter)
    assert all(tuple(v.shape) == tuple(base[k].shape) for k, v in adapter.items())
    state = adapted_state(base, adapter)
    changed = [k for k in base if not torch.equal(state[k], base[k])]
    assert changed and all(k.startswith(ADAPTED_PREFIXES) for k in changed)  # later layers stay as released


def test_adapted_state_refuses_foreign_tensors(model_dir: Path) -> None:
    base = load_checkpoint(model_dir / "embedding_model.ckpt")
    with pytest.raises(ModelError, match="first two blocks"):
        adapted_state(base, {"fc.conv.weight": base["fc.conv.weight"]})
    with pytest.raises(ModelError, match="has shape"):
        adapted_state(base, {"blocks.0.conv.conv.weight": torch.zeros(3, 3)})


def test_damaged_or_missing_adapter_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "telephone"
    shutil.copytree(ADAPTER_DIR, copy)
    assert adapter_digest(copy) == adapter_digest()
    with (copy / "adapter.npz").open("r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelChecksumMismatch, match="adapter.npz"):
        load_adapter(copy)
    (copy / "adapter.npz").unlink()
    with pytest.raises(ModelFileMissing, match="voiceauth.embedding.adapt"):
        load_adapter(copy)


def test_telephone_flag_and_8khz_input_select_the_adapted_network(fused_tel: FusedEngine, model_dir: Path) -> None:
    plain = FusedEngine(model_dir, mode="fp32", device="cpu", verify=False)
    rng = np.random.default_rng(0)
    wav16 = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    wav8 = wav16[::2].copy()
    # full band: the released network, identical with or without the adaptation loaded
    assert np.allclose(fused_tel.embed(wav16, 16000), plain.embed(wav16, 16000), atol=1e-5)
    # telephone band (said, or implied by an 8 kHz rate): the adapted network
    assert not np.allclose(fused_tel.embed(wav16, 16000, telephone=True), plain.embed(wav16, 16000), atol=1e-3)
    assert np.allclose(fused_tel.embed(wav8, 8000), fused_tel.embed(wav8, 8000, telephone=True), atol=1e-6), (
        "8 kHz audio is telephone band whatever the flag says"
    )
    assert not np.allclose(fused_tel.embed(wav8, 8000), plain.embed(wav8, 8000), atol=1e-3)


def test_adapted_telephone_embedding_is_nearer_the_full_band_one_for_unseen_readers(
    fused_tel: FusedEngine, model_dir: Path, librispeech_dir: Path
) -> None:
    """The training objective, checked on evaluation-half readers (never used in training): the same G.711
    speech embedded by the adapted network is closer to its own 16 kHz embedding than the released network's."""
    plain = FusedEngine(model_dir, mode="fp32", device="cpu", verify=False)
    files, sex = load_librispeech(librispeech_dir)
    _, evaluation = split_readers(list(files), sex)
    readers = evaluation[:6]
    wide = librispeech_pieces(files, readers, "wideband", max_pieces=1)
    tel = librispeech_pieces(files, readers, "g711_mulaw", max_pieces=1)
    ref = fused_tel.embed_batch([p.samples for p in wide], 16000)
    adapted = fused_tel.embed_batch([p.samples for p in tel], 8000)
    released = plain.embed_batch([p.samples for p in tel], 8000)
    cos_adapted = np.sum(ref * adapted, axis=1)
    cos_released = np.sum(ref * released, axis=1)
    assert cos_adapted.mean() > cos_released.mean() + 0.03, (cos_adapted, cos_released)
    assert (cos_adapted > cos_released).sum() >= 5
