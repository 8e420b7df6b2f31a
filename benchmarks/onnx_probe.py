"""ONNX Runtime probe: the fused ECAPA exported to ONNX (fp32, dynamic batch and length) against the torch engine.

Measures, on the network alone (features computed once, the same for every variant), process CPU time per call:

- ``torch-fp32`` / ``torch-int8``: :class:`FusedEcapa` as ``fused-fp32`` / ``fused-int8`` run it;
- ``ort-fp32``: the same module exported with ``torch.onnx.export(dynamo=True)``, ONNX Runtime, all graph
  optimisations;
- ``ort-int8-dyn``: ``onnxruntime.quantization.quantize_dynamic`` (per-channel int8 weights, activations quantised
  per tensor at run time), with the layers of :data:`~voiceauth.embedding.backends.int8.FP32_LAYERS` left in fp32;
- ``ort-int8-qdq``: ``quantize_static`` QDQ (per-channel weights, static per-tensor activation scales calibrated on
  real speech), same fp32 layers.

and the minimum cosine of each variant's embedding to ``torch-fp32`` on real telephone speech (FSDD strings of
1-2 s and 3 s, LibriSpeech pieces through G.711 mu-law). ``python -m benchmarks.onnx_probe --threads 1``.
The ``.onnx`` files go to a temporary folder; nothing here is used by the service.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.data import RATE, SpeechSource, librispeech_g711
from voiceauth.embedding.backends.engine import FusedEngine
from voiceauth.embedding.backends.int8 import FP32_LAYERS
from voiceauth.embedding.backends.onnx import export_onnx, int8_layers, matmul_layer_names, quantize_onnx

__all__ = ["main"]

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _ort_net(path: Path, threads: int) -> Net:
    sess = _session(path, threads)

    def run(feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        (emb,) = sess.run(["emb"], {"feats": feats.numpy(), "frames": frames.numpy().astype(np.int64)})
        return torch.from_numpy(emb)

    return run


def _torch_net(engine: FusedEngine) -> Net:
    def run(feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return engine.model(feats, frames)

    return run


class _Calibration:
    """``onnxruntime.quantization.CalibrationDataReader`` over single utterances' features."""

    def __init__(self, feats: Sequence[torch.Tensor]) -> None:
        self._items = iter(
            [{"feats": f[None].numpy(), "frames": np.array([f.shape[0]], dtype=np.int64)} for f in feats]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - not used by the MinMax calibrator
        pass


def _quantize_static(src: Path, dst: Path, nodes: list[str], calib: Sequence[torch.Tensor]) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src),
        str(dst),
        _Calibration(calib),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_quantize=nodes,
        extra_options={"MatMulConstBOnly": True},
    )


def _timed(net: Net, calls: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """Process CPU ms and wall ms of running ``net`` on every call of ``calls``."""
    c0, t0 = time.process_time(), time.perf_counter()
    for feats, frames in calls:
        net(feats, frames)
    return (time.process_time() - c0) * 1e3, (time.perf_counter() - t0) * 1e3


def _batch_groups(engine: FusedEngine, feats: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The padded model calls ``FusedEngine.embed_batch`` makes for these utterances (grouped by length)."""
    groups = engine._groups([f.shape[0] * 160 for f in feats])
    calls = []
    for g in groups:
        fs = [feats[i] for i in g]
        frames = torch.tensor([f.shape[0] for f in fs])
        calls.append((torch.nn.utils.rnn.pad_sequence(fs, batch_first=True), frames))
    return calls


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--readers", type=int, default=40, help="LibriSpeech readers in the accuracy check")
    parser.add_argument("--variants", default="torch-fp32,torch-int8,ort-fp32,ort-int8-dyn,ort-int8-qdq")
    args = parser.parse_args(argv)

    from models.fetch import ensure_model
    from voiceauth.config import Settings

    torch.set_num_threads(args.threads)
    model_dir = ensure_model(Settings(), fetch=False)
    fp32 = FusedEngine(model_dir, mode="fp32", device="cpu", verify=False)
    int8 = FusedEngine(model_dir, mode="int8", device="cpu", verify=False)
    source = SpeechSource()
    wavs = [source.string(spk, s) for spk in source.speakers for s in (1.0, 1.5, 2.0, 3.0)]
    wavs += [u.samples for u in librispeech_g711(readers=args.readers, per_reader=2)[::2]]
    feats = [fp32.features(fp32._prepare(w, RATE)) for w in wavs]
    timed = fp32.features(fp32._prepare(source.string(source.speakers[0], 3.0), RATE))
    batch_feats = [fp32.features(fp32._prepare(w, RATE)) for w in source.mixed(args.batch, 2.0, 8.0)]
    batch_audio_s = sum(f.shape[0] for f in batch_feats) / 100.0

    wanted = args.variants.split(",")
    nets: dict[str, Net] = {"torch-fp32": _torch_net(fp32), "torch-int8": _torch_net(int8)}
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="voiceauth-onnx-") as tmp:
        base = Path(tmp) / "fused-fp32.onnx"
        t0 = time.perf_counter()
        export_onnx(fp32.model, base)
        info["export_s"] = round(time.perf_counter() - t0, 1)
        names = matmul_layer_names(base, fp32.model)
        int8_nodes = [node for node, layer in names.items() if layer not in FP32_LAYERS]
        info["matmuls_matched"] = len(names)
        info["int8_matmuls"] = len(int8_nodes)
        if "ort-fp32" in wanted:
            nets["ort-fp32"] = _ort_net(base, args.threads)
        if "ort-int8-dyn" in wanted:
            quantize_onnx(base, Path(tmp) / "dyn.onnx", int8_nodes)
            nets["ort-int8-dyn"] = _ort_net(Path(tmp) / "dyn.onnx", args.threads)
        if "ort-int8-rows" in wanted:
            rows_fp32 = Path(tmp) / "rows-fp32.onnx"
            export_onnx(fp32.model, rows_fp32, int8_layers(fp32.model))
            rows_names = matmul_layer_names(rows_fp32, fp32.model)
            rows_nodes = [node for node, layer in rows_names.items() if layer not in FP32_LAYERS]
            info["rows_int8_matmuls"] = len(rows_nodes)
            quantize_onnx(rows_fp32, Path(tmp) / "rows.onnx", rows_nodes)
            nets["ort-int8-rows"] = _ort_net(Path(tmp) / "rows.onnx", args.threads)
        if "ort-int8-qdq" in wanted:
            _quantize_static(base, Path(tmp) / "qdq.onnx", int8_nodes, feats[:: max(1, len(feats) // 24)])
            nets["ort-int8-qdq"] = _ort_net(Path(tmp) / "qdq.onnx", args.threads)
        nets = {k: v for k, v in nets.items() if k in wanted or k == "torch-fp32"}

        one = torch.tensor([timed.shape[0]])
        ref = [
            torch.nn.functional.normalize(nets["torch-fp32"](f[None], torch.tensor([f.shape[0]])), dim=-1)
            for f in feats
        ]
        calls = _batch_groups(fp32, batch_feats)
        lat: dict[str, list[tuple[float, float]]] = {k: [] for k in nets}
        thr: dict[str, list[tuple[float, float]]] = {k: [] for k in nets}
        for net in nets.values():  # warm-up
            net(timed[None], one)
            net(*calls[0])
        for _ in range(args.repeats):  # round-robin: load from other jobs falls on every variant alike
            for k, net in nets.items():
                lat[k].append(_timed(net, [(timed[None], one)]))
        for _ in range(max(1, args.repeats // 5)):
            for k, net in nets.items():
                thr[k].append(_timed(net, calls))
        rows = {}
        for k, net in nets.items():
            cos = [
                float(torch.nn.functional.normalize(net(f[None], torch.tensor([f.shape[0]])), dim=-1) @ r.T)
                for f, r in zip(feats, ref, strict=True)
            ]
            cpu, wall = np.median(np.array(lat[k]), axis=0)
            bcpu, bwall = np.median(np.array(thr[k]), axis=0)
            rows[k] = {
                "cpu_ms_3s_p50": round(float(cpu), 2),
                "wall_ms_3s_p50": round(float(wall), 2),
                "batch_audio_s_per_cpu_s": round(batch_audio_s / (float(bcpu) / 1e3), 1),
                "batch_audio_s_per_s": round(batch_audio_s / (float(bwall) / 1e3), 1),
                "cosine_min": round(min(cos), 5),
            }
    doc = {
        "threads": args.threads,
        "batch": args.batch,
        "accuracy_utterances": len(feats),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        **info,
        "variants": rows,
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
