"""SpeechBrain's own reference pipeline (``SpeakerRecognition.from_hparams``), loaded offline.

Used by tests and benchmarks to prove the engine is equivalent to, and faster than, the upstream pipeline.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_reference"]

log = logging.getLogger(__name__)


def load_reference(model_dir: Path, savedir: Path | None = None) -> Any:
    """SpeechBrain's ``SpeakerRecognition`` on the verified local files, fp32, CPU, eager."""
    from speechbrain.inference.speaker import SpeakerRecognition

    save = savedir or Path(tempfile.mkdtemp(prefix="voiceauth-sb-ref-"))
    model = SpeakerRecognition.from_hparams(
        source=str(model_dir),
        savedir=str(save),
        overrides={"pretrained_path": str(model_dir)},
        run_opts={"device": "cpu"},
    )
    model.eval()
    torch.set_grad_enabled(True)  # from_hparams leaves global state alone; be explicit
    return model
