"""The shipped telephone countermeasure: the LFB-LCNN of :mod:`.lcnn` trained by :mod:`.train`, calibrated.

``models/antispoof/`` holds ``lcnn.npz`` (the network's tensors, float32) and ``MANIFEST.json``, which pins the file
by sha256 and carries the network's configuration, the calibration (``llr = scale * logit + offset``, fitted by
logistic regression on development data) and the shipped threshold (the LLR at which the development bona fide
telephone speech is flagged at the target BPCER, 1% by default), with the provenance and the training command.

:class:`TelephoneNet` takes 16 kHz windows (the service's convention for the countermeasure's input), takes them to
8 kHz, and returns the calibrated spoof log-likelihood ratio of each (higher = more likely spoof). The file is
verified before it is loaded; a missing, altered or foreign file is a :class:`~voiceauth.errors.ModelError` that
says what to do, never a silent pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
from torch import nn

import models as _models_pkg
from models.fetch import sha256_file
from voiceauth.antispoof.lcnn import LCNN, LCNNConfig
from voiceauth.errors import ModelChecksumMismatch, ModelError, ModelFileMissing

__all__ = ["CM_DIR", "ShippedCM", "TelephoneNet", "load_shipped", "write_model"]

CM_DIR = Path(_models_pkg.__file__).resolve().parent / "antispoof"  # package data of `models`
WEIGHTS = "lcnn.npz"
MANIFEST = "MANIFEST.json"
_REBUILD = "rebuild it with `python -m voiceauth.antispoof.train`"


@dataclass(frozen=True)
class ShippedCM:
    """What the manifest says about the shipped network."""

    config: LCNNConfig
    scale: float
    offset: float
    threshold: float
    digest: str
    manifest: dict[str, Any]


class TelephoneNet(nn.Module):
    """(batch, samples) 16 kHz windows -> calibrated spoof LLR (batch,)."""

    def __init__(self, net: LCNN, scale: float, offset: float) -> None:
        super().__init__()
        self.net = net.eval()
        self.scale = float(scale)
        self.offset = float(offset)

    def forward(self, x16k: torch.Tensor) -> torch.Tensor:
        x8k = AF.resample(x16k, 16_000, 8_000)
        out: torch.Tensor = self.net(x8k) * self.scale + self.offset
        return out


def write_model(out: Path, net: LCNN, manifest: dict[str, Any]) -> str:
    """Write ``lcnn.npz`` and a ``MANIFEST.json`` pinning it (``manifest`` holds config, calibration, provenance)."""
    out.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().float().numpy() for k, v in sorted(net.state_dict().items())}
    np.savez_compressed(out / WEIGHTS, **arrays)
    digest = sha256_file(out / WEIGHTS)
    body = {"files": {WEIGHTS: {"sha256": digest}}, **manifest}
    (out / MANIFEST).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return digest


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelFileMissing(f"the countermeasure manifest {path} is missing; {_REBUILD}")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        float(manifest["calibration"]["scale"])
        float(manifest["calibration"]["offset"])
        float(manifest["threshold"]["llr"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is not a countermeasure manifest (calibration/threshold missing): {exc}") from exc
    return manifest


def load_shipped(folder: Path = CM_DIR) -> tuple[LCNN, ShippedCM]:
    """The verified network (eval mode, float32) and its manifest facts."""
    manifest = _read_manifest(folder)
    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelFileMissing(f"the countermeasure weights {path} are missing; {_REBUILD}")
    expected = manifest.get("files", {}).get(WEIGHTS, {}).get("sha256")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelChecksumMismatch(f"{path} has sha256 {actual}, {folder / MANIFEST} expects {expected}; {_REBUILD}")
    cfg = LCNNConfig.from_dict(manifest.get("config", {}))
    net = LCNN(cfg)
    try:
        with np.load(path, allow_pickle=False) as z:
            state = {k: torch.from_numpy(z[k].astype(np.float32)) for k in z.files}
        net.load_state_dict(state, strict=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path} does not hold the countermeasure network of its manifest: {exc}") from exc
    cal = manifest["calibration"]
    info = ShippedCM(
        config=cfg,
        scale=float(cal["scale"]),
        offset=float(cal["offset"]),
        threshold=float(manifest["threshold"]["llr"]),
        digest=actual,
        manifest=manifest,
    )
    return net.eval(), info
