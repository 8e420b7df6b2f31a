"""OpenVINO backend: :class:`FusedEcapa` exported to ONNX, compiled by OpenVINO's CPU plugin (optional).

The front end and the length grouping stay those of :class:`FusedEngine`; the network runs in OpenVINO (oneDNN
kernels: AMX on CPUs that have it, AVX512-BF16 / AVX512-VNNI elsewhere), one compiled model with dynamic batch and
length. The graph is exported once from the verified weights (:func:`voiceauth.embedding.backends.onnx.export_onnx`),
converted to OpenVINO's IR and cached beside the model, keyed by the weights' sha256, the plan and the library
versions.

Modes:

- ``fp32``: the graph as exported, computed in fp32;
- ``bf16``: the same graph with OpenVINO's bf16 inference precision (only where the CPU has native bf16);
- ``int8``: the int8 layers of ``fused-int8`` (:func:`~voiceauth.embedding.backends.onnx.int8_layers`, 86% of the
  work) get int8 weights, symmetric per output channel (``nncf.compress_weights``, INT8_SYM), and the CPU plugin
  quantises their activations dynamically, per frame and per group of :data:`DQ_GROUP` input channels
  (``DYNAMIC_QUANTIZATION_GROUP_SIZE``): finer than ``onnx-int8``'s per-frame scales, no calibration set. The other
  layers (:data:`~voiceauth.embedding.backends.int8.FP32_LAYERS`) run in bf16 where the CPU has native bf16, else
  fp32.
"""

from __future__ import annotations

import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.fetch import sha256_file
from voiceauth.embedding.backends.engine import FusedEngine
from voiceauth.embedding.backends.fused import FusedEcapa
from voiceauth.embedding.backends.onnx import export_onnx, int8_layers, matmul_layer_names
from voiceauth.embedding.precision import cpu_has_bf16
from voiceauth.embedding.telephone import adapter_digest
from voiceauth.errors import ConfigError, ModelError

__all__ = ["DQ_GROUP", "OPENVINO_MODES", "OV_PLAN", "OpenVinoEngine", "build_ir", "openvino_available"]

log = logging.getLogger(__name__)

OPENVINO_MODES = ("int8", "bf16", "fp32")
#: Bumped whenever the converted graph or its quantisation changes, so that cached files are rebuilt.
OV_PLAN = "wc8-v1"
#: Input channels per dynamic activation scale of the int8 layers (per frame). Measured on the 2-core Zen 4,
#: 1 thread, 3 s: groups of 32 -> 47 ms network, 128 -> 38 ms, both minimum cosine 0.9996 to fp32.
DQ_GROUP = 128


def openvino_available() -> bool:
    """True when OpenVINO, NNCF and the exporter's packages (``onnx``, ``onnxscript``) can be imported."""
    try:
        import nncf  # noqa: F401
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _require_openvino() -> Any:
    try:
        import nncf  # noqa: F401
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
        import openvino
    except ImportError as exc:
        raise ConfigError(
            f"the OpenVINO embedding backend needs the packages openvino, nncf, onnx and onnxscript ({exc}); "
            "install them with `pip install 'voiceauth[openvino]'`, or use backend 'auto'"
        ) from exc
    return openvino


def versions() -> str:
    """The library versions the cached IR depends on (also part of ``auto``'s calibration key)."""
    return f"torch{torch.__version__.split('+')[0]}-ov{metadata.version('openvino')}-nncf{metadata.version('nncf')}"


def build_ir(model: FusedEcapa, mode: str, dst: Path) -> Any:
    """Export ``model`` (fp32) to ONNX, convert to OpenVINO and, for ``int8``, compress the int8 layers' weights.

    Writes ``dst`` (``.xml`` + ``.bin``, fp32 constants kept) atomically where the folder is writable; returns the
    ``openvino.Model``.
    """
    ov = _require_openvino()
    import nncf

    with tempfile.TemporaryDirectory(prefix="voiceauth-ov-") as tmp:
        onnx_path = Path(tmp) / "fp32.onnx"
        export_onnx(model, onnx_path)
        ir = ov.Core().read_model(str(onnx_path))
        if mode == "int8":
            wanted = set(int8_layers(model))
            names = {n for n, layer in matmul_layer_names(onnx_path, model).items() if layer in wanted}
            matmuls = [op.get_friendly_name() for op in ir.get_ops() if op.get_type_name() == "MatMul"]
            if len(names & set(matmuls)) != len(wanted):
                raise ModelError(f"OpenVINO: found {len(names & set(matmuls))} of the {len(wanted)} int8 layers")
            keep = [n for n in matmuls if n not in names]
            ir = nncf.compress_weights(
                ir,
                mode=nncf.CompressWeightsMode.INT8_SYM,
                ignored_scope=nncf.IgnoredScope(names=keep, validate=False),
            )
    part = dst.with_name(f"{dst.stem}.{os.getpid()}.part.xml")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        ov.save_model(ir, str(part), compress_to_fp16=False)
        os.replace(part.with_suffix(".bin"), dst.with_suffix(".bin"))
        os.replace(part, dst)
    except OSError as exc:
        log.warning("could not cache the OpenVINO graph at %s (%s): it is rebuilt at every start", dst, exc)
        part.unlink(missing_ok=True)
        part.with_suffix(".bin").unlink(missing_ok=True)
    return ir


def cache_path(model_dir: Path, mode: str) -> Path:
    """``<models>/<model>-openvino/<sha256 of the weights>-<plan>-<mode>-<versions>.xml``."""
    digest = sha256_file(model_dir / "embedding_model.ckpt")[:16]
    return model_dir.parent / f"{model_dir.name}-openvino" / f"{digest}-{OV_PLAN}-{mode}-{versions()}.xml"


def compile_config(mode: str, threads: int) -> dict[str, Any]:
    """The CPU plugin's settings for ``mode`` on ``threads`` threads (latency: one stream, no core pinning)."""
    native_bf16 = cpu_has_bf16()
    if mode == "bf16" and not native_bf16:
        raise ConfigError("OpenVINO mode 'bf16' needs native bf16 (AMX or AVX512-BF16); use 'int8' or 'fp32'")
    cfg: dict[str, Any] = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        # a shared server: do not pin OpenVINO's threads to cores the torch front end and other workers use
        "ENABLE_CPU_PINNING": False,
        "INFERENCE_PRECISION_HINT": "bf16" if mode != "fp32" and native_bf16 else "f32",
    }
    if mode == "int8":
        cfg["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = DQ_GROUP
    return cfg


class OpenVinoEngine(FusedEngine):
    """:class:`FusedEngine` whose network runs in OpenVINO (CPU); implements ``EmbeddingEngine``.

    The first start exports and converts (~20 s); later ones load the cached IR. Thread-safe (one inference
    request per network, used under the engine's lock).
    """

    def __init__(
        self,
        model_dir: Path,
        mode: str = "int8",
        device: str = "cpu",
        num_threads: int | None = None,
        verify: bool = True,
        cache_dir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        ov = _require_openvino()
        if mode not in OPENVINO_MODES:
            raise ConfigError(f"OpenVINO mode {mode!r} is not supported; use one of {', '.join(OPENVINO_MODES)}")
        if device not in ("cpu", "auto"):
            raise ConfigError(f"the OpenVINO backend runs on the CPU only; device {device!r} does not apply")
        super().__init__(model_dir, mode="fp32", device="cpu", num_threads=num_threads, verify=verify, **kwargs)
        self._ov = ov
        self._core = ov.Core()
        self._config = compile_config(mode, num_threads or torch.get_num_threads())
        path = cache_path(model_dir, "int8" if mode == "int8" else "fp32")
        if cache_dir is not None:
            path = cache_dir / path.name
        self._request = self._load(self.model, path, mode)
        self._request_tel = None
        if self.model_tel is not None and self.telephone_adapter is not None:
            tel = path.with_name(f"{path.stem}-tel{adapter_digest(self.telephone_adapter)[:16]}.xml")
            self._request_tel = self._load(self.model_tel, tel, mode)
        self.precision = mode
        self.ir_path = path
        log.info("OpenVINO ECAPA engine ready (%s, %s)", mode, path.name)

    def _load(self, model: FusedEcapa, path: Path, mode: str) -> Any:
        """An inference request of ``model`` compiled for the CPU: the IR cached at ``path``, built if missing."""
        try:
            if path.is_file() and path.with_suffix(".bin").is_file():
                ir = self._core.read_model(str(path))
            else:
                log.info("converting the fused ECAPA to OpenVINO (%s) for %s", mode, path)
                ir = build_ir(model, "int8" if mode == "int8" else "fp32", path)
            return self._core.compile_model(ir, "CPU", self._config).create_infer_request()
        except (RuntimeError, ValueError) as exc:  # OpenVINO raises RuntimeError for damaged files
            raise ModelError(f"could not load the OpenVINO graph {path}: {exc}; delete it to rebuild it") from exc

    def _network(self, feats: torch.Tensor, frames: torch.Tensor | None, telephone: bool = False) -> torch.Tensor:
        if frames is None:
            frames = torch.full((feats.shape[0],), feats.shape[1], dtype=torch.long)
        request = self._request_tel if telephone and self._request_tel is not None else self._request
        out = request.infer({"feats": feats.float().contiguous().numpy(), "frames": frames.long().numpy()})
        return torch.from_numpy(np.array(next(iter(out.values())), dtype=np.float32))
