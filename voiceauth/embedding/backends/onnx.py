"""ONNX Runtime backend: :class:`FusedEcapa` exported to ONNX and run by ONNX Runtime's CPU kernels (optional).

The front end (resampling, Fbank, mean normalisation) and the length grouping stay those of :class:`FusedEngine`;
only the network runs in ONNX Runtime. The graph is exported at run time from the verified weights (``torch.onnx``,
dynamic batch and length, the attention mask always applied) and cached next to the model, keyed by the weights'
sha256, the export plan and the library versions; ``.onnx`` files are never shipped.

``int8``: ``onnxruntime.quantization.quantize_dynamic`` on the same layers as ``fused-int8``
(every GEMM except :data:`~voiceauth.embedding.backends.int8.FP32_LAYERS`): int8 weights per output channel,
activations quantised per call. Those layers are exported as ``(x / r) @ W.T * r + b`` with ``r`` each frame's
max |x| (the same function in fp32), so ONNX Runtime's per-tensor activation scale acts per frame as in
:class:`~voiceauth.embedding.backends.int8.Int8Linear` (plain per-tensor scales: minimum cosine 0.9967 on real
telephone speech, under the 0.999 guard; per frame: 0.9995). ``fp32``: the exported graph as it is.

Measured against the torch engine by ``python -m benchmarks.onnx_probe`` (``benchmarks/results/embedding-README.md``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.fetch import sha256_file
from voiceauth.embedding.backends.engine import FusedEngine
from voiceauth.embedding.backends.fused import FusedEcapa
from voiceauth.embedding.backends.int8 import FP32_LAYERS
from voiceauth.embedding.telephone import adapter_digest
from voiceauth.errors import ConfigError, ModelError

__all__ = [
    "ONNX_MODES",
    "EXPORT_PLAN",
    "OnnxEngine",
    "export_onnx",
    "int8_layers",
    "matmul_layer_names",
    "onnxruntime_available",
    "quantize_onnx",
]

log = logging.getLogger(__name__)

ONNX_MODES = ("int8", "fp32")
#: Bumped whenever the exported graph or the quantisation changes, so that cached files are rebuilt.
EXPORT_PLAN = "rows-v1"


def onnxruntime_available() -> bool:
    """True when ONNX Runtime and the exporter's packages (``onnx``, ``onnxscript``) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def _require_onnxruntime() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"the ONNX Runtime embedding backend needs the packages onnxruntime, onnx and onnxscript ({exc}); "
            "install them with `pip install 'voiceauth[onnx]'`, or use backend 'fused-int8' or 'auto'"
        ) from exc
    return onnxruntime


class _RowScaled:
    """``F.linear`` as ``(x / r) @ W.T * r + b``, ``r`` each row's max |x|: in fp32 the same function; once
    ONNX Runtime quantises the MatMul's input per tensor, every frame keeps its own resolution."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight, self.bias = weight, bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12)
        y = torch.nn.functional.linear(x / rows, self.weight) * rows
        return y if self.bias is None else y + self.bias


def int8_layers(model: FusedEcapa) -> list[str]:
    """The layers ``fused-int8`` runs in int8 (every GEMM layer and ``att_conv`` not in ``FP32_LAYERS``)."""
    return [n for n in [*model.gemm_layers(), "att_conv"] if n not in FP32_LAYERS]


def export_onnx(model: FusedEcapa, path: Path, row_scaled: Sequence[str] = ()) -> None:
    """fp32 ``model`` -> ONNX: inputs ``feats [B, T, 80]`` float32, ``frames [B]`` int64; output ``emb [B, 192]``.

    Layers named in ``row_scaled`` are written as :class:`_RowScaled` (for per-frame dynamic int8). The model is
    left as it was found (no int8 kernels: pass an fp32 model).
    """
    model.always_mask = True
    for name, layer in model.gemm_layers().items():
        layer.linear = _RowScaled(layer.weight, layer.bias) if name in row_scaled else None
    model.att_conv = _RowScaled(model.att_conv_w, model.att_conv_b) if "att_conv" in row_scaled else None
    # the exporter prints its progress and warns about the (deliberately shared) batch dimension
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            _export(model, path)
        finally:
            model.always_mask = False
            for layer in model.gemm_layers().values():
                layer.linear = None
            model.att_conv = None


def _export(model: FusedEcapa, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    time_ = torch.export.Dim("time", min=8, max=100_000)
    torch.onnx.export(
        model,
        (torch.randn(2, 301, 80), torch.tensor([301, 250])),
        str(path),
        dynamo=True,
        input_names=["feats", "frames"],
        output_names=["emb"],
        dynamic_shapes={"feats": {0: batch, 1: time_}, "frames": {0: batch}},
        optimize=True,
        external_data=False,
        verbose=False,
    )


def matmul_layer_names(onnx_path: Path, model: FusedEcapa) -> dict[str, str]:
    """ONNX MatMul/Gemm node name -> :class:`FusedEcapa` layer name, matched by the constant weight's values."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path))
    consts = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].type == onnx.AttributeProto.TENSOR:
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    weights = {name: m.weight.detach().numpy() for name, m in model.gemm_layers().items()}
    weights["att_conv"] = model.att_conv_w.detach().numpy()
    out: dict[str, str] = {}
    for node in proto.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        w = consts.get(node.input[1])
        if w is None or w.ndim != 2:
            continue
        for name, ref in weights.items():
            if (w.shape == ref.T.shape and np.array_equal(w, ref.T)) or (
                w.shape == ref.shape and np.array_equal(w, ref)
            ):
                out[node.name] = name
                break
    return out


def quantize_onnx(src: Path, dst: Path, nodes: Sequence[str]) -> None:
    """Dynamic int8 (per-channel symmetric weights, activations per call) of the MatMul nodes named in ``nodes``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    hint = _DropMessage("Please consider")  # the quantiser's advice to run its shape pre-processing: not needed
    root.addFilter(hint)
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=list(nodes),
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.removeFilter(hint)


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _build(model: FusedEcapa, mode: str) -> bytes:
    """The serialised ONNX graph of ``model`` in ``mode`` (exported and, for int8, quantised in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="voiceauth-onnx-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        if mode == "fp32":
            export_onnx(model, fp32)
            built = fp32
        else:
            layers = int8_layers(model)
            export_onnx(model, fp32, layers)
            nodes = [n for n, layer in matmul_layer_names(fp32, model).items() if layer in layers]
            if len(nodes) != len(layers):
                raise ModelError(f"ONNX export: found {len(nodes)} of the {len(layers)} int8 layers in the graph")
            built = Path(tmp) / "int8.onnx"
            quantize_onnx(fp32, built, nodes)
        return built.read_bytes()


def _store(graph: bytes, dst: Path) -> bool:
    """Write ``graph`` to ``dst`` atomically (complete or absent); False where the folder is not writable."""
    part = dst.with_name(f"{dst.name}.{os.getpid()}.part")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(graph)
        os.replace(part, dst)
    except OSError as exc:
        log.warning("could not cache the ONNX graph at %s (%s): it is rebuilt at every start", dst, exc)
        part.unlink(missing_ok=True)
        return False
    return True


def cache_path(model_dir: Path, mode: str) -> Path:
    """``<models>/<model>-onnx/<sha256 of the weights>-<plan>-<mode>-torch<v>-ort<v>.onnx``."""
    digest = sha256_file(model_dir / "embedding_model.ckpt")[:16]
    versions = f"torch{torch.__version__.split('+')[0]}-ort{metadata.version('onnxruntime')}"
    return model_dir.parent / f"{model_dir.name}-onnx" / f"{digest}-{EXPORT_PLAN}-{mode}-{versions}.onnx"


class OnnxEngine(FusedEngine):
    """:class:`FusedEngine` whose network runs in ONNX Runtime (CPU); implements ``EmbeddingEngine``.

    ``cache_dir``: where the exported graph is kept (default: beside the model folder, see :func:`cache_path`).
    The first start exports and quantises (~15 s); later ones load the cached file.
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
        ort = _require_onnxruntime()
        if mode not in ONNX_MODES:
            raise ConfigError(f"ONNX engine mode {mode!r} is not supported; use one of {', '.join(ONNX_MODES)}")
        if device not in ("cpu", "auto"):
            raise ConfigError(f"the ONNX backend runs on the CPU only; device {device!r} does not apply")
        super().__init__(model_dir, mode="fp32", device="cpu", num_threads=num_threads, verify=verify, **kwargs)
        self._ort = ort
        self._threads = num_threads or torch.get_num_threads()
        path = cache_path(model_dir, mode)
        if cache_dir is not None:
            path = cache_dir / path.name
        self._session = self._load(self.model, path, mode)
        self._session_tel = None
        if self.model_tel is not None and self.telephone_adapter is not None:
            tel_path = path.with_name(f"{path.stem}-tel{adapter_digest(self.telephone_adapter)[:16]}.onnx")
            self._session_tel = self._load(self.model_tel, tel_path, mode)
        self.precision = mode
        self.onnx_path = path
        log.info("ONNX Runtime ECAPA engine ready (%s, %s)", mode, path.name)

    def _load(self, model: FusedEcapa, path: Path, mode: str) -> Any:
        """An ONNX Runtime session of ``model``: the graph cached at ``path``, exported (and stored) if missing."""
        ort = self._ort
        source: str | bytes = str(path)
        if not path.is_file():
            log.info("exporting the fused ECAPA to ONNX (%s) for %s", mode, path)
            graph = _build(model, mode)
            if not _store(graph, path):
                source = graph
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self._threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no spin-waiting between ops: on a shared machine (and next to torch's own threads in this process)
        # spinning threads take the cores the others need; no cost measured on the 2-core Zen 4
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for damaged files
            raise ModelError(f"could not load the ONNX graph {path}: {exc}; delete it to rebuild it") from exc

    def _network(self, feats: torch.Tensor, frames: torch.Tensor | None, telephone: bool = False) -> torch.Tensor:
        if frames is None:
            frames = torch.full((feats.shape[0],), feats.shape[1], dtype=torch.long)
        inputs = {"feats": feats.float().contiguous().numpy(), "frames": frames.long().numpy()}
        session = self._session_tel if telephone and self._session_tel is not None else self._session
        (emb,) = session.run(["emb"], inputs)
        return torch.from_numpy(emb)
