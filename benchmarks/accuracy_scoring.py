"""Accuracy: SpeechBrain's own pipeline + plain cosine vs voiceauth's production path, same data, one run.

Sets (all from ``../shared/data``; evaluation readers are never in the shipped cohort):

* ``librispeech-16k``      - evaluation half of the LibriSpeech readers, 3-6 s pieces, 16 kHz
* ``librispeech-g711-mulaw`` - the same pieces through 8 kHz G.711 mu-law (telephone channel)
* ``librispeech-g711-alaw``  - the same pieces through 8 kHz G.711 A-law (optional: ``--sets``)
* ``fsdd-digits-g711-alaw``  - FSDD strings of 5-8 digits (~3 s) of 6 speakers through G.711 A-law

Baseline = ``voiceauth.embedding.reference.load_reference`` (SpeechBrain ``SpeakerRecognition``, fp32) on the
whole piece (8 kHz resampled to 16 kHz) + plain cosine. Production = the front end (VAD, when present) + the
fp32 engine + ``create_scorer(Settings())`` (AS-norm / calibration from ``models/cohort``). Every unordered
pair of pieces is a trial. Writes ``benchmarks/results/accuracy.{md,json}``.

    .venv/bin/python -m benchmarks.accuracy_scoring            # about 40-60 min on 2 busy CPU cores
    .venv/bin/python -m benchmarks.accuracy_scoring --cache /tmp/acc-cache   # keep embeddings for re-runs
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
import torch
import torchaudio.functional as AF

from models.fetch import ensure_model
from voiceauth.config import Settings
from voiceauth.embedding.factory import create_engine
from voiceauth.embedding.reference import load_reference
from voiceauth.scoring.build import embed_pieces
from voiceauth.scoring.evalsets import (
    Piece,
    fsdd_digit_strings,
    librispeech_pieces,
    load_librispeech,
    split_readers,
)
from voiceauth.scoring.evaluation import evaluate
from voiceauth.scoring.factory import create_scorer
from voiceauth.scoring.metrics import eer, min_dcf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def build_sets(
    data: Path,
    which: Sequence[str],
    max_pieces: int,
    fsdd_per_speaker: int,
    max_readers: int | None = None,
    wideband_max_readers: int | None = None,
) -> dict[str, list[Piece]]:
    files, sex = load_librispeech(data / "librispeech-cohort")
    _, all_eval = split_readers(list(files), sex)
    by_hash = sorted(all_eval, key=lambda r: hashlib.sha256(r.encode()).hexdigest())
    eval_readers = sorted(by_hash[:max_readers]) if max_readers else all_eval
    wide_readers = sorted(by_hash[:wideband_max_readers]) if wideband_max_readers else eval_readers
    sets: dict[str, list[Piece]] = {}
    for name in which:
        if name == "librispeech-16k":
            sets[name] = librispeech_pieces(files, wide_readers, "wideband", max_pieces=max_pieces)
        elif name == "librispeech-g711-mulaw":
            sets[name] = librispeech_pieces(files, eval_readers, "g711_mulaw", max_pieces=max_pieces)
        elif name == "librispeech-g711-alaw":
            sets[name] = librispeech_pieces(files, eval_readers, "g711_alaw", max_pieces=max_pieces)
        elif name == "fsdd-digits-g711-alaw":
            sets[name] = fsdd_digit_strings(data / "fsdd", per_speaker=fsdd_per_speaker, channel="g711_alaw")
        else:
            raise SystemExit(f"unknown set {name}")
    return sets


def _batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


def embed_reference(ref: Any, pieces: Sequence[Piece], batch: int = 8) -> np.ndarray:
    """SpeechBrain's pipeline: 16 kHz waveform (resampled like its audio normaliser would) -> encode_batch."""
    wavs = [
        AF.resample(torch.from_numpy(p.samples), p.sample_rate, 16000)
        if p.sample_rate != 16000
        else torch.from_numpy(p.samples)
        for p in pieces
    ]
    out = np.zeros((len(pieces), 192))
    for idx in _batches([w.numel() for w in wavs], batch):
        longest = max(wavs[i].numel() for i in idx)
        x = torch.zeros(len(idx), longest)
        for k, i in enumerate(idx):
            x[k, : wavs[i].numel()] = wavs[i]
        lens = torch.tensor([wavs[i].numel() / longest for i in idx])
        with torch.inference_mode():
            emb = ref.encode_batch(x, lens).reshape(len(idx), -1)
        out[idx] = emb.numpy()
        logging.getLogger("benchmarks.accuracy").info("reference: batch of %d done", len(idx))
    return out


def embed_production(engine: Any, settings: Settings, pieces: Sequence[Piece]) -> dict[str, Any]:
    """The production path: front end (VAD) + engine, exactly as the cohort was built."""
    from voiceauth.audio.frontend import FrontEnd

    emb, nb, net = embed_pieces(engine, pieces, FrontEnd(settings))
    return {"emb": emb, "narrowband": nb, "speech_s": net, "vad": True}


def cosine_eer(emb: np.ndarray, speakers: Sequence[str]) -> tuple[float, float]:
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    m = x @ x.T
    spk = np.asarray(speakers)
    iu, ju = np.triu_indices(len(spk), k=1)
    same = spk[iu] == spk[ju]
    s = m[iu, ju]
    return eer(s[same], s[~same]), min_dcf(s[same], s[~same])


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument(
        "--sets",
        nargs="+",
        default=["librispeech-g711-mulaw", "fsdd-digits-g711-alaw", "librispeech-16k"],
    )
    ap.add_argument("--max-pieces", type=int, default=3, help="Pieces per evaluation reader (CPU budget).")
    ap.add_argument("--max-readers", type=int, default=None, help="Evaluation readers used (CPU budget).")
    ap.add_argument("--wideband-max-readers", type=int, default=None, help="Readers for librispeech-16k only.")
    ap.add_argument("--fsdd-per-speaker", type=int, default=20, help="Digit strings per FSDD speaker.")
    ap.add_argument("--embed-only", action="store_true", help="Only fill --cache with embeddings (no scoring).")
    ap.add_argument("--cache", type=Path, default=None, help="Store/reuse embeddings here (development).")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    settings = Settings(precision="fp32", device="cpu")
    t0 = time.time()
    sets = build_sets(
        args.data, args.sets, args.max_pieces, args.fsdd_per_speaker, args.max_readers, args.wideband_max_readers
    )
    ref = load_reference(ensure_model(settings, fetch=False))
    engine = create_engine(settings, fetch=False)
    scorer = None if args.embed_only else create_scorer(settings)
    rows: list[dict[str, Any]] = []
    for name, pieces in sets.items():
        speakers = [p.speaker for p in pieces]
        cache = args.cache / f"{name}-{len(pieces)}.npz" if args.cache else None
        if cache is not None and cache.is_file():
            z = dict(np.load(cache, allow_pickle=False))
            base_emb, prod = (
                z["base"],
                {"emb": z["prod"], "narrowband": z["nb"], "speech_s": z["net"], "vad": bool(z["vad"])},
            )
        else:
            base_emb = embed_reference(ref, pieces)
            prod = embed_production(engine, settings, pieces)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(
                    cache, base=base_emb, prod=prod["emb"], nb=prod["narrowband"], net=prod["speech_s"], vad=prod["vad"]
                )
        if scorer is None:
            continue
        b_eer, b_dcf = cosine_eer(base_emb, speakers)
        res = evaluate(scorer, prod["emb"], speakers, prod["narrowband"].tolist(), prod["speech_s"].tolist())
        telephone = bool(np.all(prod["narrowband"])) if not name.endswith("16k") else False
        rows.append(
            {
                "set": name,
                "telephone": telephone,
                "files": res["files"],
                "speakers": res["speakers"],
                "target_trials": res["target_trials"],
                "nontarget_trials": res["nontarget_trials"],
                "baseline_eer": b_eer,
                "baseline_min_dcf": b_dcf,
                "engine_cosine_eer": res["raw_cosine_eer"],
                "production_eer": res["eer"],
                "production_min_dcf": res["min_dcf"],
                "relative_eer_change": (res["eer"] - b_eer) / b_eer if b_eer > 0 else float("nan"),
                "vad": prod["vad"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    if scorer is None:
        return
    tel = [r for r in rows if r["telephone"]]
    wide = [r for r in rows if not r["telephone"]]
    checks = {
        "every_telephone_set_lower": all(r["production_eer"] < r["baseline_eer"] for r in tel) if tel else None,
        "telephone_mean_relative_change": float(np.mean([r["relative_eer_change"] for r in tel])) if tel else None,
        "wideband_within_0.1_points": all(r["production_eer"] <= r["baseline_eer"] + 0.001 for r in wide)
        if wide
        else None,
    }
    checks["telephone_mean_at_least_20pct_lower"] = (
        checks["telephone_mean_relative_change"] is not None and checks["telephone_mean_relative_change"] <= -0.2
    )
    meta = {
        "command": " ".join(["python -m benchmarks.accuracy_scoring", *(argv if argv is not None else sys.argv[1:])]),
        "seconds": round(time.time() - t0, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scorer": type(scorer).__name__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(
        json.dumps({"rows": rows, "checks": checks, "meta": meta}, indent=2) + "\n", encoding="utf-8"
    )
    lines = [
        "# Accuracy: SpeechBrain reference + plain cosine vs voiceauth production scoring",
        "",
        f"Command: `{meta['command']}` ({meta['seconds']} s). EER in %, minDCF at p_target 0.01.",
        "Baseline = SpeechBrain `SpeakerRecognition` embeddings + cosine. Production = front end"
        f" (VAD: {'yes' if rows and rows[0]['vad'] else 'no'}) + fp32 engine + shipped AS-norm/calibration.",
        "",
        "| set | files | target / non-target trials | baseline EER | engine cosine EER | production EER "
        "| change | baseline minDCF | production minDCF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['files']} | {r['target_trials']} / {r['nontarget_trials']} | "
            f"{100 * r['baseline_eer']:.2f} | {100 * r['engine_cosine_eer']:.2f} | {100 * r['production_eer']:.2f} | "
            f"{100 * r['relative_eer_change']:+.1f}% | {r['baseline_min_dcf']:.3f} | {r['production_min_dcf']:.3f} |"
        )
    lines += [
        "",
        "Checks: " + ", ".join(f"{k} = {v}" for k, v in checks.items()),
        "",
        "Method: LibriSpeech readers split by `voiceauth.scoring.evalsets.split_readers` (disjoint halves, sex-"
        "balanced); the shipped cohort, calibration and the choice of back end per channel come from the cohort"
        " half only (`python -m voiceauth.scoring.build`); these rows use the evaluation half only, "
        f"{args.max_pieces} pieces of 3-6 s per reader; FSDD: {args.fsdd_per_speaker} strings of 5-8 digits per"
        " speaker. Every unordered pair of pieces is a trial; target = same reader. The baseline embeds the whole"
        " piece; production embeds the front end's speech-only audio.",
        "",
    ]
    (args.out / "accuracy.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
