"""Smoke runs of the benchmark CLI (``--quick``): the documents have the promised shape. No timing assertions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from benchmarks.cli import app
from voiceauth.embedding.autoselect import GUARD_COSINE
from voiceauth.embedding.backends.int8 import cpu_has_vnni

#: int8 without VNNI measured a minimum cosine of 0.998 (AMD EPYC, AVX2 only): under the guard, so ``auto`` rejects
#: it there by its own measurement; with VNNI the plan holds the guard
INT8_COSINE = GUARD_COSINE if cpu_has_vnni() else 0.995

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """The CLI sets torch's thread count for the process; give later tests the count they had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_latency_json_has_the_fields_the_issue_specifies(model_dir: Path, fsdd_dir: Path) -> None:
    res = CliRunner().invoke(
        app, ["latency", "--seconds", "1", "--json", "--quick", "--repeats", "1", "--backends", "fused-int8"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output.strip().splitlines()[-1])
    assert doc["reference_p50_ms"] > 0
    assert doc["production_backend"] in (
        "fused-int8",
        "onnx-int8",
        "fused-fp32",
        "fused-bf16",
        "openvino-int8",
        "openvino-bf16",
    )
    r = doc["backends"]["fused-int8"]
    assert {"p50_ms", "p99_ms", "speedup", "cosine_min"} <= set(r)
    assert r["cosine_min"] >= INT8_COSINE  # the accuracy guard holds on real speech (CPUs with VNNI)
    # the roofline: this run's GEMM peaks and each backend's fraction of the bound of its precision plan
    assert doc["cpu"]["model"] and isinstance(doc["cpu"]["flags"], list)
    assert doc["peaks"]["gflops"]["fp32"] > 0 and doc["peaks"]["threads"] == doc["threads"]
    assert r["roofline_fraction"] > 0 and r["roofline"]["precision"] == "int8"
    assert r["roofline"]["gflop"] == pytest.approx(3.6, abs=0.1)  # ECAPA's GEMMs for 1 s (101 frames)


def test_quick_suite_writes_json_markdown_and_plots(
    tmp_path: Path, model_dir: Path, fsdd_dir: Path, librispeech_dir: Path
) -> None:
    res = CliRunner().invoke(
        app, ["all", "--quick", "--backends", "fused-int8", "--threads", "1", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "embedding-cpu-quick.json").read_text())
    assert set(doc["latency"]["3s"]) == {"reference", "fused-int8"}
    assert [r["batch"] for r in doc["throughput"]["fused-int8"]] == [1, 8]
    acc = doc["accuracy"]["backends"]
    assert acc["reference"]["eer_rel_to_fp32"] == 0.0 and 0.0 <= acc["fused-int8"]["eer"] <= 1.0
    tel = doc["accuracy_telephone"]  # many-speaker telephone set: LibriSpeech readers through G.711
    assert tel["trials"]["target"] >= 10 and tel["trials"]["nontarget"] > tel["trials"]["target"]
    assert tel["backends"]["fused-int8"]["cosine_min"] >= INT8_COSINE
    assert all(r["audio_s_per_cpu_s"] > 0 for r in doc["throughput"]["fused-int8"])
    assert doc["environment"]["versions"]["torch"]
    assert doc["roofline"]["3s"]["fused-int8"]["roofline_fraction"] > 0
    assert "| fused-int8 |" in (tmp_path / "embedding-cpu-quick.md").read_text()
    for png in ("embedding-cpu-quick_latency.png", "embedding-cpu-quick_throughput.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
