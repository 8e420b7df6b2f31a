"""Train the telephone-channel adaptation of ECAPA's first layers (teacher-student on the cohort half; dev tool).

SpeechBrain's ECAPA was trained on wideband VoxCeleb. Telephone audio lacks everything above ~3.7 kHz, and the
network's embedding of the same speech moves a lot when that band is missing (mean cosine 0.74 between the
telephone-band and the full-band embedding of one 3 s crop). Here the first two blocks (``blocks.0``, the 80->1024
input layer, and ``blocks.1``, the first SE-Res2Net block: 3.1 M of the 20.8 M parameters) are fine-tuned so
that the network's embedding of a crop *after* the telephone channel matches the unchanged network's embedding of
the *same crop at 16 kHz* (teacher = the pretrained model on the full band, student = a copy on the telephone band,
loss = 1 - cosine). BatchNorm statistics and every later layer stay as released; wideband audio keeps using the
original weights.

Data: the **cohort half** of the LibriSpeech readers only (``voiceauth.scoring.evalsets.split_readers``; every
fifth cohort reader is held out for a development loss), never the evaluation half. Each step draws random 2-4 s
crops, a random level (-12..+6 dB) and a random G.711 law (mu/A), through 16 kHz -> 8 kHz -> G.711 -> 8 kHz ->
16 kHz. bf16 autocast on CPU (AMX) ~5 s per step of 16 crops on 2 cores.

Writes ``models/telephone/``: ``adapter.npz`` (the trained tensors in float16) and ``MANIFEST.json`` (sha256,
provenance, the training curve), loaded by :mod:`voiceauth.embedding.telephone`::

    .venv/bin/python -m voiceauth.embedding.adapt          # ~17 min on 2 AMX cores
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization

from voiceauth.audio.io import load_audio
from voiceauth.embedding.ecapa import ecapa_tdnn, load_checkpoint
from voiceauth.embedding.telephone import ADAPTED_PREFIXES, ADAPTER_DIR, write_adapter
from voiceauth.scoring.evalsets import load_librispeech, split_readers, telephone_channel

__all__ = ["main", "train"]

log = logging.getLogger("voiceauth.adapt")


class _Crops:
    """Random (16 kHz, telephone-channel) crop pairs of a set of readers' utterances."""

    def __init__(self, audio: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        self.audio, self.rng = audio, rng

    def _channel(self, x16: np.ndarray) -> torch.Tensor:
        gain = 10 ** (self.rng.uniform(-12.0, 6.0) / 20.0)
        law = "g711_mulaw" if self.rng.random() < 0.5 else "g711_alaw"
        y, rate = telephone_channel((x16 * gain).astype(np.float32), 16000, law)  # the evaluation sets' channel
        return AF.resample(torch.from_numpy(y), rate, 16000)

    def batch(self, readers: Sequence[str], size: int, seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
        n = int(seconds * 16000)
        wide, tel = [], []
        for r in self.rng.choice(np.asarray(readers), size):
            a = self.audio[str(r)]
            start = int(self.rng.integers(0, max(1, a.size - n + 1)))
            c = np.pad(a[start : start + n], (0, max(0, n - a.size)))
            wide.append(torch.from_numpy(c))
            tel.append(self._channel(c)[:n])
        t = min(x.numel() for x in tel)
        return torch.stack([x[:t] for x in wide]), torch.stack([x[:t] for x in tel])


def train(
    ckpt: Path, data: Path, steps: int = 200, lr: float = 1e-4, batch: int = 16, seed: int = 0
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Fine-tune ``ADAPTED_PREFIXES`` of the ECAPA at ``ckpt``; returns (trained tensors, training record)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    base = load_checkpoint(ckpt)
    teacher, student = ecapa_tdnn(base, ckpt), ecapa_tdnn(base, ckpt)  # eval(): BatchNorm keeps its statistics
    for p in teacher.parameters():
        p.requires_grad_(False)
    trained = [n for n, p in student.named_parameters() if n.startswith(ADAPTED_PREFIXES)]
    for n, p in student.named_parameters():
        p.requires_grad_(n in trained)
    fbank, norm = Fbank(n_mels=80).eval(), InputNormalization(norm_type="sentence", std_norm=False).eval()

    def embed(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        f = fbank(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            e = model(norm(f, torch.ones(f.shape[0])))
        return torch.nn.functional.normalize(e.float().reshape(x.shape[0], -1), dim=-1)

    files, sex = load_librispeech(data / "librispeech-cohort")
    cohort, evaluation = split_readers(list(files), sex)
    dev = cohort[::5]
    fit = [r for r in cohort if r not in dev]
    crops = _Crops({r: load_audio(files[r]).samples.astype(np.float32) for r in cohort}, rng)
    dev_batches = [crops.batch(dev, 16, 3.0) for _ in range(4)]

    def dev_loss() -> float:
        with torch.inference_mode():
            return float(
                np.mean([1 - (embed(student, t) * embed(teacher, w)).sum(-1).mean().item() for w, t in dev_batches])
            )

    curve = [{"step": 0, "dev_loss": dev_loss()}]
    log.info("dev loss before training %.4f", curve[0]["dev_loss"])
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    t0 = time.time()
    for step in range(1, steps + 1):
        wide, tel = crops.batch(fit, batch, float(rng.uniform(2.0, 4.0)))
        with torch.no_grad():
            target = embed(teacher, wide)
        loss = 1 - (embed(student, tel) * target).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps:
            curve.append({"step": step, "train_loss": float(loss.item()), "dev_loss": dev_loss()})
            log.info("step %d loss %.4f dev %.4f (%.0f s)", step, loss.item(), curve[-1]["dev_loss"], time.time() - t0)
    tensors = {n: p.detach().clone() for n, p in student.named_parameters() if n in trained}
    record = {
        "cohort_readers_trained": fit,
        "cohort_readers_dev": dev,
        "evaluation_readers_excluded": evaluation,
        "steps": steps,
        "lr": lr,
        "batch": batch,
        "seed": seed,
        "curve": curve,
        "train_seconds": round(time.time() - t0, 1),
    }
    return tensors, record


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ADAPTER_DIR)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from models.fetch import ensure_model
    from voiceauth.config import Settings

    ckpt = ensure_model(Settings(), fetch=False) / "embedding_model.ckpt"
    tensors, record = train(ckpt, args.data, args.steps, args.lr, args.batch, args.seed)
    provenance = {
        "base_model": "spkrec-ecapa-voxceleb embedding_model.ckpt (models/registry.py pin), Apache-2.0",
        "data": "LibriSpeech train-clean readers in ../shared/data/librispeech-cohort (CC BY 4.0, openslr.org/12),"
        " cohort half only (voiceauth.scoring.evalsets.split_readers)",
        "method": "teacher-student: student(telephone channel of a crop) -> teacher(same crop at 16 kHz), 1 - cosine;"
        f" trained: {', '.join(ADAPTED_PREFIXES)}; bf16 autocast; AdamW",
        "channel": "16 kHz -> 8 kHz (torchaudio sinc) -> G.711 mu-law or A-law -> 8 kHz -> 16 kHz, level -12..+6 dB",
        "command": "python -m voiceauth.embedding.adapt" + (" " + " ".join(argv) if argv else ""),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        **record,
    }
    write_adapter(args.out, tensors, provenance)
    print(json.dumps({"out": str(args.out), "dev_loss": record["curve"][-1]["dev_loss"]}))


if __name__ == "__main__":
    main()
