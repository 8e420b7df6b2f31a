"""Anti-spoofing accuracy: AASIST on real bona fide speech vs generated attacks, 16 kHz and telephone channel.

Bona fide: LibriSpeech cohort readers (16 kHz) and FSDD digit strings (7 digits of one speaker, 8 kHz native,
upsampled). Spoof: espeak-ng (formant synthesis, 8 voices, 120-220 wpm) and Piper en_US-joe-medium (neural TTS).
Telephone: every utterance passes 16 kHz -> 8 kHz -> G.711 mu-law -> 16 kHz (FSDD is narrowband either way).

Per-window scores are cached in ``--work`` (default /tmp/voiceauth-antispoof-eval), so pooling variants are
analysed without re-scoring. Writes ``benchmarks/results/antispoof.json`` and prints a markdown table.

    .venv/bin/python benchmarks/antispoof_eval.py --libri 50 --fsdd 30 --espeak 40 --piper 40
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from models.fetch import ensure_model
from models.registry import AASIST
from voiceauth.antispoof.attacks import espeak_attacks, piper_attacks, telephone_channel
from voiceauth.antispoof.countermeasure import Countermeasure
from voiceauth.antispoof.evaluation import load_16k, spoof_metrics
from voiceauth.antispoof.windows import pool_scores, trim_silence, windows
from voiceauth.config import Settings

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"


def build_sets(work: Path, n_libri: int, n_fsdd: int, n_espeak: int, n_piper: int) -> dict[str, list[Path]]:
    sets: dict[str, list[Path]] = {}
    libri = sorted((DATA / "librispeech-cohort").glob("*.flac"))
    step = max(1, len(libri) // max(1, n_libri))
    sets["librispeech"] = libri[::step][:n_libri]
    fsdd_dir = work / "fsdd"
    fsdd_dir.mkdir(parents=True, exist_ok=True)
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    rng = np.random.default_rng(1)
    out = []
    for i in range(n_fsdd):
        spk = speakers[i % len(speakers)]
        path = fsdd_dir / f"fsdd-{spk}-{i:03d}.wav"
        if not path.exists():
            digits = rng.integers(0, 10, 7)
            idx = rng.integers(0, 50, 7)
            parts = [
                sf.read(str(DATA / "fsdd" / f"{d}_{spk}_{k}.wav"), dtype="float32")[0]
                for d, k in zip(digits, idx, strict=True)
            ]
            gap = np.zeros(800, dtype=np.float32)
            sf.write(str(path), np.concatenate([np.concatenate([p, gap]) for p in parts]), 8000)
        out.append(path)
    sets["fsdd"] = out
    for name, gen, n in (("espeak", espeak_attacks, n_espeak), ("piper", piper_attacks, n_piper)):
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        files = sorted(d.glob("*.wav"))
        if len(files) < n:
            for f in files:
                f.unlink()
            for atk in gen(n, seed=7):
                sf.write(str(d / f"{atk.name}.wav"), atk.samples, 16000)
            files = sorted(d.glob("*.wav"))
        sets[name] = files[:n]
    return sets


def score_all(
    cm: Countermeasure, sets: dict[str, list[Path]], cache: Path, conditions: list[str]
) -> dict[str, dict[str, list[float]]]:
    scores: dict[str, dict[str, list[float]]] = json.loads(cache.read_text()) if cache.exists() else {}
    for cond in conditions:
        for name in ("piper", "fsdd", "librispeech", "espeak"):
            files = sets[name]
            key = f"{cond}/{name}"
            done = scores.get(key, {})
            for path in files:
                if path.name in done:
                    continue
                x = load_16k(path)
                if cond.startswith("telephone"):
                    x = telephone_channel(x)
                if cond.endswith("-trim"):
                    x = trim_silence(x)
                mat = windows(x, cm.window, cm.hop, cm.max_windows)
                done[path.name] = [float(v) for v in cm.score_windows(mat)]
                scores[key] = done
                cache.write_text(json.dumps(scores))
            print(f"scored {key}: {len(done)} files", flush=True)
    return scores


def pooled(scores: dict[str, dict[str, list[float]]], cond: str, name: str, pooling: str) -> list[float]:
    """Utterance scores of one set: window scores pooled (``first`` = the first window only)."""
    vals = scores[f"{cond}/{name}"].values()
    if pooling == "first":
        return [w[0] for w in vals]
    return [pool_scores(w, pooling) for w in vals]  # type: ignore[arg-type]


def analyse(scores: dict[str, dict[str, list[float]]], threshold: float, conditions: list[str]) -> dict[str, object]:
    report: dict[str, object] = {}
    for cond in conditions:
        for pooling in ("mean", "median", "min", "max", "first"):
            bona = {b: pooled(scores, cond, b, pooling) for b in ("librispeech", "fsdd")}
            for atk in ("espeak", "piper"):
                for bname, b in [*bona.items(), ("all", bona["librispeech"] + bona["fsdd"])]:
                    m = spoof_metrics(b, pooled(scores, cond, atk, pooling), threshold)
                    report[f"{cond}|{pooling}|{atk}|{bname}"] = m.as_dict()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/voiceauth-antispoof-eval"))
    ap.add_argument("--libri", type=int, default=50)
    ap.add_argument("--fsdd", type=int, default=30)
    ap.add_argument("--espeak", type=int, default=40)
    ap.add_argument("--piper", type=int, default=40)
    ap.add_argument("--max-windows", type=int, default=4)
    ap.add_argument("--conditions", default="telephone,16k", help="telephone, 16k, telephone-trim, 16k-trim")
    ap.add_argument("--threshold", type=float, default=None, help="default: Settings().antispoof_threshold")
    args = ap.parse_args()
    settings = Settings()
    threshold = args.threshold if args.threshold is not None else float(getattr(settings, "antispoof_threshold", 0.0))
    cm = Countermeasure(ensure_model(settings, AASIST), max_windows=args.max_windows)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    sets = build_sets(args.work, args.libri, args.fsdd, args.espeak, args.piper)
    print(f"sets built in {time.time() - t0:.0f} s: " + ", ".join(f"{k}={len(v)}" for k, v in sets.items()), flush=True)
    conditions = args.conditions.split(",")
    scores = score_all(cm, sets, args.work / f"window_scores-{'_'.join(conditions)}.json", conditions)
    report = analyse(scores, threshold, conditions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"antispoof-{'_'.join(conditions)}.json").write_text(
        json.dumps({"threshold": threshold, "max_windows": args.max_windows, "results": report}, indent=1)
    )
    print("| channel | pooling | attack | bona fide | EER % | APCER % | BPCER % |")
    print("|---|---|---|---|---|---|---|")
    for key, m in report.items():
        cond, pooling, atk, bname = key.split("|")
        assert isinstance(m, dict)
        print(
            f"| {cond} | {pooling} | {atk} | {bname} | {100 * m['eer']:.1f} | {100 * m['apcer']:.1f} | "
            f"{100 * m['bpcer']:.1f} |"
        )


if __name__ == "__main__":
    main()
