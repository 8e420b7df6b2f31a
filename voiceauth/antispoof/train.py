"""Train the telephone countermeasure (LFB-LCNN, :mod:`.lcnn`) on the corpus of :mod:`.corpus` (dev tool).

1. The corpus: bona fide LibriSpeech cohort-half pieces and FSDD takes 0-24; spoofs from espeak-ng, Festival and
   WORLD/MLSA copy-synthesis (``--engines`` leaves engines out for leave-one-engine-out runs). Never Piper, never
   the evaluation half or FSDD takes 25-49.
2. Every piece goes through the random telephone channel (:func:`.channel.chain`: RawBoost, band-pass, 8 kHz,
   PCM/G.711/GSM/AMR-NB, packet loss, noise), ``--copies`` times for training; development pieces once through a
   random channel and once through the fixed 300-3400 Hz G.711 channel of the evaluation.
3. Training: balanced batches of random 2 s crops (log filterbank, mean-normalised per crop, random frequency
   masks), binary cross-entropy, AdamW, fixed seeds.
4. Calibration on the development pieces: logistic regression ``llr = scale * logit + offset``; the shipped
   threshold is the LLR at which ``--target-bpcer`` (1%) of the development bona fide pieces are flagged.
5. Writes ``models/antispoof/`` (``lcnn.npz`` + ``MANIFEST.json`` with sha256, calibration, threshold, provenance).

    .venv/bin/python -m voiceauth.antispoof.train --cache /tmp/cm-cache   # ~40 min on 2 busy cores
    .venv/bin/python -m voiceauth.antispoof.train --engines espeak,festival --out /tmp/cm-no-vocoded

Needs the Debian packages espeak-ng, festival, festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts, sox,
libsox-fmt-all and the Python packages pyworld and pysptk (``pip install -e '.[train]'``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize as so
import torch
import torch.nn.functional as F

from voiceauth.antispoof.channel import chain, fixed_telephone
from voiceauth.antispoof.corpus import ENGINES, Segment, bona_fide, spoofs
from voiceauth.antispoof.evaluation import threshold_for_bpcer
from voiceauth.antispoof.lcnn import LCNN, LCNNConfig
from voiceauth.antispoof.telephone import CM_DIR, load_shipped, write_model
from voiceauth.audio.resample import resample
from voiceauth.scoring.metrics import eer

__all__ = ["build_items", "calibrate", "main", "train"]

log = logging.getLogger("voiceauth.antispoof.train")

CROP_FRAMES = 200  # 2 s at a 10 ms hop (callers answer in 2-3 s)


def _service_rate_trip(x8k: np.ndarray) -> np.ndarray:
    """8 kHz -> 16 kHz -> 8 kHz: the front end upsamples call audio, the countermeasure takes it back down."""
    return resample(resample(x8k, 8000, 16000), 16000, 8000)


def _rng_for(seed: int, key: str, k: int) -> np.random.Generator:
    h = hashlib.sha256(f"{seed}|{key}|{k}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def _features(net: LCNN, x8k: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        return net.frontend.raw(torch.from_numpy(np.ascontiguousarray(x8k, dtype=np.float32))[None])[0].half()


def realise(
    segments: Sequence[Segment], net: LCNN, seed: int, copies_bona: int, copies_spoof: int
) -> list[tuple[torch.Tensor, int, str, str]]:
    """(raw log-LFB features, label, engine, channel) of each channel realisation of each piece."""
    out: list[tuple[torch.Tensor, int, str, str]] = []
    for seg in segments:
        if seg.split == "dev":
            plans = [("random", 0), ("fixed", 0)]
        else:
            plans = [("random", k) for k in range(copies_spoof if seg.label else copies_bona)]
        for kind, k in plans:
            rng = _rng_for(seed, seg.key, k)
            if kind == "fixed":
                y = fixed_telephone(seg.samples, seg.rate, "mulaw" if rng.random() < 0.5 else "alaw")
            else:
                y = chain(seg.samples, seg.rate, rng)
            out.append((_features(net, _service_rate_trip(y)), seg.label, seg.engine, kind))
    return out


def _crop(feats: torch.Tensor, frames: int, gen: torch.Generator) -> torch.Tensor:
    f = feats.float()
    if f.shape[1] < frames:
        f = f.repeat(1, -(-frames // f.shape[1]))
    start = int(torch.randint(0, f.shape[1] - frames + 1, (1,), generator=gen))
    return f[:, start : start + frames]


def _batch(
    items: Sequence[tuple[torch.Tensor, int, str, str]], idx: Sequence[int], gen: torch.Generator
) -> torch.Tensor:
    crops = []
    for i in idx:
        c = _crop(items[i][0], CROP_FRAMES, gen)
        width = int(torch.randint(0, 7, (1,), generator=gen))  # frequency mask
        if width:
            lo = int(torch.randint(0, c.shape[0] - width, (1,), generator=gen))
            c = c.clone()
            c[lo : lo + width] = c.mean()
        crops.append(c)
    return torch.stack(crops)


def score_items(net: LCNN, items: Sequence[tuple[torch.Tensor, int, str, str]]) -> np.ndarray:
    """Uncalibrated logit of each realisation, over its whole length."""
    net.eval()
    out = []
    with torch.inference_mode():
        for feats, *_ in items:
            out.append(float(net.forward_features(net.frontend.normalise(feats.float()[None]))[0]))
    return np.asarray(out)


def calibrate(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Logistic regression (class-balanced) of the spoof label on the logit: ``llr = scale * s + offset``."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    w = np.where(y == 1, 0.5 / max(1.0, y.sum()), 0.5 / max(1.0, (1 - y).sum()))

    def loss(p: np.ndarray) -> float:
        z = p[0] * s + p[1]
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)))

    res = so.minimize(loss, np.array([1.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    return float(res.x[0]), float(res.x[1])


Item = tuple[torch.Tensor, int, str, str]


def build_items(
    data: Path,
    net: LCNN,
    seed: int,
    copies_bona: int,
    copies_spoof: int,
    limit: int | None,
    scale: float,
    cache: Path | None,
) -> tuple[list[Item], list[Item], dict[str, int]]:
    """The realised train and dev items of the whole corpus (every engine), cached in ``cache`` when given."""
    key = f"cm-items-s{seed}-b{copies_bona}-p{copies_spoof}-l{limit}-x{scale}.pt"
    if cache is not None and (cache / key).is_file():
        blob = torch.load(cache / key, weights_only=True)
        return _unpack(blob["train"]), _unpack(blob["dev"]), dict(blob["counts"])
    t0 = time.time()
    rng = np.random.default_rng(seed)
    bona = bona_fide(data, rng)
    if limit is not None:
        bona = [
            s
            for split in ("train", "dev")
            for eng in ("librispeech", "fsdd")
            for s in [b for b in bona if b.split == split and b.engine == eng][:limit]
        ]
    spoof = spoofs(bona, rng, ENGINES, scale=scale if limit is None else max(0.02, limit / 480))
    counts: dict[str, int] = {}
    for seg in [*bona, *spoof]:
        counts[f"{seg.engine}-{seg.split}"] = counts.get(f"{seg.engine}-{seg.split}", 0) + 1
    log.info("corpus: %d bona fide, %d spoof pieces (%.0f s)", len(bona), len(spoof), time.time() - t0)
    corpus = [*bona, *spoof]
    train_items = realise([s for s in corpus if s.split == "train"], net, seed, copies_bona, copies_spoof)
    dev_items = realise([s for s in corpus if s.split == "dev"], net, seed, 1, 1)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({"train": _pack(train_items), "dev": _pack(dev_items), "counts": counts}, cache / key)
    return train_items, dev_items, counts


def _pack(items: Sequence[Item]) -> dict[str, Any]:
    return {
        "feats": [it[0] for it in items],
        "labels": [it[1] for it in items],
        "engines": [it[2] for it in items],
        "kinds": [it[3] for it in items],
    }


def _unpack(blob: dict[str, Any]) -> list[Item]:
    return list(zip(blob["feats"], blob["labels"], blob["engines"], blob["kinds"], strict=True))


def train(
    data: Path,
    out: Path,
    *,
    engines: Sequence[str] = ENGINES,
    epochs: int = 6,
    steps: int = 80,
    batch: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    copies_bona: int = 3,
    copies_spoof: int = 2,
    target_bpcer: float = 0.01,
    limit: int | None = None,
    scale: float = 1.0,
    cache: Path | None = None,
    eval_every: int = 2,
    init: Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Build the corpus, train, calibrate and write the model to ``out``; returns the manifest written."""
    torch.manual_seed(seed)
    t0 = time.time()
    cfg = LCNNConfig()
    net = LCNN(cfg)
    init_digest = None
    if init is not None:  # continue training a model this script wrote (same data, same recipe)
        net, shipped = load_shipped(init)
        cfg, init_digest = net.cfg, shipped.digest
    train_all, dev_all, counts = build_items(data, net, seed, copies_bona, copies_spoof, limit, scale, cache)
    keep = {"librispeech", "fsdd", *engines}
    train_items = [it for it in train_all if it[2] in keep]
    dev_items = [it for it in dev_all if it[2] in keep]
    log.info("training on %d / dev %d realisations (%.0f s)", len(train_items), len(dev_items), time.time() - t0)
    labels = np.array([it[1] for it in train_items])
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("the training corpus needs both bona fide and spoof pieces")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps)
    curve: list[dict[str, float]] = []
    half = batch // 2
    for epoch in range(epochs):
        net.train()
        total = 0.0
        for _ in range(steps):
            idx = list(pos[torch.randint(0, pos.size, (half,), generator=gen).numpy()])
            idx += list(neg[torch.randint(0, neg.size, (half,), generator=gen).numpy()])
            feats = net.frontend.normalise(_batch(train_items, idx, gen))
            y = torch.tensor([float(train_items[i][1]) for i in idx])
            loss = F.binary_cross_entropy_with_logits(net.forward_features(feats), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        point: dict[str, float] = {"epoch": epoch + 1, "loss": total / steps}
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            dev_scores = score_items(net, dev_items)
            dev_labels = np.array([it[1] for it in dev_items])
            point["dev_eer"] = eer(dev_scores[dev_labels == 1], dev_scores[dev_labels == 0])
        curve.append(point)
        log.info("epoch %d: %s (%.0f s)", epoch + 1, point, time.time() - t0)
    dev_scores = score_items(net, dev_items)
    dev_labels = np.array([it[1] for it in dev_items])
    scale_, offset = calibrate(dev_scores, dev_labels)
    llr = scale_ * dev_scores + offset
    thr = threshold_for_bpcer(llr[dev_labels == 0], target_bpcer)
    manifest: dict[str, Any] = {
        "config": cfg.as_dict(),
        "calibration": {"scale": scale_, "offset": offset, "method": "class-balanced logistic regression, dev"},
        "threshold": {
            "llr": thr,
            "target_bpcer": target_bpcer,
            "dev_bpcer": float(np.mean(llr[dev_labels == 0] >= thr)),
            "dev_apcer": float(np.mean(llr[dev_labels == 1] < thr)),
            "dev_bona_fide": int((dev_labels == 0).sum()),
            "dev_spoof": int((dev_labels == 1).sum()),
        },
        "provenance": {
            "data": "bona fide: LibriSpeech cohort-half readers (CC BY 4.0, openslr.org/12) and FSDD takes 0-24"
            " (CC BY-SA 4.0); spoof: espeak-ng, Festival (kal/ked diphone, cmu_us_slt_arctic_hts), WORLD and MLSA"
            " copy-synthesis of the bona fide pieces; never Piper, never the evaluation half or FSDD takes 25-49",
            "engines": list(engines),
            "channel": "voiceauth.antispoof.channel.chain (RawBoost, band-pass, 8 kHz, PCM/G.711/GSM/AMR-NB, packet"
            " loss, 10-30 dB noise); dev also through the fixed 300-3400 Hz G.711 channel",
            "command": command
            or "python -m voiceauth.antispoof.train"
            + ("" if tuple(engines) == ENGINES else f" --engines {','.join(engines)}"),
            "seed": seed,
            "continued_from": init_digest,
            "epochs": epochs,
            "steps_per_epoch": steps,
            "batch": batch,
            "pieces": counts,
            "curve": curve,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "train_seconds": round(time.time() - t0, 1),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    digest = write_model(out, net, manifest)
    log.info("wrote %s (sha256 %s); threshold %.3f, dev %s", out, digest[:12], thr, curve[-1])
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=CM_DIR)
    ap.add_argument("--engines", default=",".join(ENGINES), help="spoof engines to train on (comma-separated)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=80, help="steps per epoch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-bpcer", type=float, default=0.01)
    ap.add_argument("--limit", type=int, default=None, help="tiny run: at most this many bona fide pieces a split")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--init", type=Path, default=None, help="continue from a model folder this script wrote")
    ap.add_argument("--cache", type=Path, default=None, help="keep the realised corpus here (reused by later runs)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    manifest = train(
        args.data,
        args.out,
        engines=engines,
        epochs=args.epochs,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        target_bpcer=args.target_bpcer,
        limit=args.limit,
        cache=args.cache,
        init=args.init,
        command=" ".join(["python -m voiceauth.antispoof.train", *(argv if argv is not None else sys.argv[1:])]),
    )
    print(json.dumps(manifest["threshold"], indent=2))


if __name__ == "__main__":
    main()
