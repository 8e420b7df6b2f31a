"""Held-out accuracy of the telephone countermeasure through the service's telephone path (issue 16's table).

Evaluation data, never trained or tuned on:

* bona fide ``librispeech-eval``: the **evaluation half** of the LibriSpeech readers (3-6 s pieces, the first
  ``--pieces`` of each reader); ``fsdd-eval``: FSDD digit strings of 4-7 digits from takes 25-49;
* attacks: ``piper`` (neural TTS, en_US-joe-medium; the held-out engine, never trained on), and new utterances of
  the training engines (``espeak``, ``festival``: other texts and seeds than training; ``vocoded``: WORLD/MLSA
  copies of evaluation-half pieces).

Channel: 300-3400 Hz band-pass, 8 kHz, G.711 (mu-law; FSDD A-law), then the service's front end (telephone band,
VAD) and the countermeasure on the speech span, exactly as an 8 kHz call or upload is scored. Metrics (ISO/IEC
30107-3): EER of each attack against all bona fide pieces; BPCER of each bona fide set and APCER of each attack at
the shipped threshold. ``--loeo engine=DIR`` adds leave-one-engine-out rows: a model trained without ``engine``
(``python -m voiceauth.antispoof.train --engines ...``) tested on that engine and on Piper.

    .venv/bin/python -m benchmarks.antispoof_telephone --loeo espeak=/tmp/cm-no-espeak,...

Writes ``benchmarks/results/antispoof_telephone.json`` and ``.md``; generated audio is cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import cpu_summary
from voiceauth.antispoof.attacks import SENTENCES, espeak_synthesize, piper_available, piper_synthesize
from voiceauth.antispoof.channel import fixed_telephone
from voiceauth.antispoof.corpus import (
    FESTIVAL_VOICES,
    espeak_voices,
    festival_available,
    festival_synthesize,
    random_texts,
)
from voiceauth.antispoof.countermeasure import Countermeasure, create_countermeasure
from voiceauth.antispoof.evaluation import spoof_metrics
from voiceauth.audio.frontend import FrontEnd
from voiceauth.audio.io import load_audio
from voiceauth.config import Settings
from voiceauth.embedding.base import FloatArray
from voiceauth.scoring.evalsets import cut_pieces, load_librispeech, split_readers

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
BONA = ("librispeech-eval", "fsdd-eval")
ATTACKS = ("piper", "espeak", "festival", "vocoded")

Clip = tuple[FloatArray, int, str]  # samples, rate, codec


def _fsdd_eval(rng: np.random.Generator) -> list[Clip]:
    by_speaker: dict[str, list[Path]] = {}
    for p in sorted((DATA / "fsdd").glob("*.wav")):
        parts = p.stem.split("_")
        if len(parts) == 3 and int(parts[2]) >= 25:
            by_speaker.setdefault(parts[1], []).append(p)
    out: list[Clip] = []
    for speaker in sorted(by_speaker):
        paths = [by_speaker[speaker][int(i)] for i in rng.permutation(len(by_speaker[speaker]))]
        for k in range(0, len(paths) - 3, 5):
            chunk = paths[k : k + int(rng.integers(4, 8))]
            gap = np.zeros(int(8000 * rng.uniform(0.03, 0.15)), dtype=np.float32)
            wav = np.concatenate([np.concatenate([load_audio(p).samples, gap]) for p in chunk]).astype(np.float32)
            out.append((wav, 8000, "alaw"))
    return out


def build_sets(pieces: int, n_attack: int, seed: int = 7) -> dict[str, list[Clip]]:
    """The evaluation sets (native rate, before the channel)."""
    rng = np.random.default_rng(seed)
    files, sex = load_librispeech(DATA / "librispeech-cohort")
    _cohort, evaluation = split_readers(list(files), sex)
    libri: list[Clip] = []
    for reader in evaluation:
        audio = load_audio(files[reader])
        for piece in cut_pieces(audio.samples, audio.sample_rate, 3.0, 6.0)[:pieces]:
            libri.append((piece, audio.sample_rate, "mulaw"))
    sets: dict[str, list[Clip]] = {"librispeech-eval": libri, "fsdd-eval": _fsdd_eval(rng)}
    texts = random_texts(n_attack, np.random.default_rng(seed + 1000))
    if piper_available():
        sets["piper"] = [
            (
                piper_synthesize(
                    SENTENCES[i % len(SENTENCES)] if i % 2 else texts[i],
                    float(rng.uniform(0.8, 1.3)),
                    float(rng.uniform(0.4, 0.9)),
                    float(rng.uniform(0.5, 1.0)),
                ),
                16000,
                "mulaw",
            )
            for i in range(n_attack)
        ]
    voices = espeak_voices()
    sets["espeak"] = [
        (
            espeak_synthesize(
                t, voices[int(rng.integers(len(voices)))], int(rng.integers(110, 231)), int(rng.integers(20, 81))
            ),
            16000,
            "mulaw",
        )
        for t in texts
    ]
    if festival_available():
        fest = []
        for i, t in enumerate(texts[: n_attack // 2]):
            x, r = festival_synthesize(t, FESTIVAL_VOICES[i % len(FESTIVAL_VOICES)], float(rng.uniform(0.8, 1.3)))
            fest.append((x, r, "mulaw"))
        sets["festival"] = fest
    from voiceauth.antispoof.vocode import vocode

    sets["vocoded"] = [
        (vocode(x, r, "world" if i % 2 == 0 else "mlsa", rng), r, "mulaw")
        for i, (x, r, _) in enumerate(libri[: n_attack // 2])
    ]
    return sets


def service_path(settings: Settings) -> Callable[[Clip], FloatArray]:
    """The fixed telephone channel, then the service's front end to the speech span (16 kHz)."""
    frontend = FrontEnd(settings)

    def run(clip: Clip) -> FloatArray:
        x, rate, codec = clip
        y = fixed_telephone(x, rate, codec)
        utt = frontend.from_samples(y, 8000, narrowband=True)
        out = utt.span if utt.span is not None and utt.span.size else utt.speech
        return np.asarray(out, dtype=np.float32)

    return run


def score_sets(cm: Countermeasure, channelled: dict[str, list[FloatArray]]) -> dict[str, list[float]]:
    return {name: [cm.score(x).score for x in xs if x.size] for name, xs in channelled.items()}


def metrics_table(scores: dict[str, list[float]], threshold: float) -> dict[str, Any]:
    bona = np.concatenate([np.asarray(scores[b]) for b in BONA if b in scores])
    out: dict[str, Any] = {"threshold": threshold, "bona_fide": {}, "attacks": {}}
    for b in BONA:
        if b in scores:
            s = np.asarray(scores[b])
            out["bona_fide"][b] = {"n": int(s.size), "bpcer": float(np.mean(s >= threshold))}
    for a in ATTACKS:
        if a in scores and scores[a]:
            m = spoof_metrics(bona, scores[a], threshold)
            out["attacks"][a] = {"n": m.n_spoof, "eer": m.eer, "apcer": m.apcer}
    return out


def _load_cache(path: Path) -> dict[str, list[Clip]] | None:
    if not path.is_file():
        return None
    sets: dict[str, list[Clip]] = {}
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        for name, items in meta.items():
            sets[name] = [(z[f"{name}/{i}"], int(r), str(c)) for i, (r, c) in enumerate(items)]
    return sets


def _save_cache(path: Path, sets: dict[str, list[Clip]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{n}/{i}": x for n, items in sets.items() for i, (x, _, _) in enumerate(items)}
    meta = {n: [(r, c) for _, r, c in items] for n, items in sets.items()}
    np.savez(path, meta=np.asarray(json.dumps(meta)), **arrays)  # type: ignore[arg-type]


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Telephone countermeasure `{report['model']}` on held-out data, service telephone path "
        f"(300-3400 Hz band-pass, 8 kHz G.711), threshold {report['main']['threshold']:.3f} (shipped).",
        f"CPU: {report['cpu']}. Command: `{report['command']}`.",
        "",
        "| bona fide set | pieces | BPCER at the shipped threshold |",
        "|---|---|---|",
    ]
    for b, m in report["main"]["bona_fide"].items():
        lines.append(f"| {b} | {m['n']} | {100 * m['bpcer']:.1f}% |")
    lines += ["", "| attack (vs all bona fide) | pieces | EER | APCER at the shipped threshold |", "|---|---|---|---|"]
    for a, m in report["main"]["attacks"].items():
        held = " (held-out engine)" if a == "piper" else ""
        lines.append(f"| {a}{held} | {m['n']} | {100 * m['eer']:.2f}% | {100 * m['apcer']:.1f}% |")
    if "aasist" in report:
        lines += ["", "AASIST (ASVspoof 2019 LA, threshold 0) on the same pieces:", ""]
        lines += ["| set | EER | BPCER / APCER at 0 |", "|---|---|---|"]
        for b, m in report["aasist"]["bona_fide"].items():
            lines.append(f"| {b} | | {100 * m['bpcer']:.1f}% |")
        for a, m in report["aasist"]["attacks"].items():
            lines.append(f"| {a} | {100 * m['eer']:.2f}% | {100 * m['apcer']:.1f}% |")
    if report.get("loeo"):
        lines += [
            "",
            "Leave-one-engine-out (a model trained without the engine, tested on it and on Piper):",
            "",
            "| trained without | EER on that engine | APCER there | Piper EER | Piper APCER | BPCER (all bona fide) |",
            "|---|---|---|---|---|---|",
        ]
        for eng, m in report["loeo"].items():
            own, piper = m["attacks"].get(eng, {}), m["attacks"].get("piper", {})
            bona = np.mean([v["bpcer"] for v in m["bona_fide"].values()])
            lines.append(
                f"| {eng} | {100 * own.get('eer', float('nan')):.2f}% | {100 * own.get('apcer', float('nan')):.1f}% "
                f"| {100 * piper.get('eer', float('nan')):.2f}% | {100 * piper.get('apcer', float('nan')):.1f}% "
                f"| {100 * bona:.1f}% |"
            )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.time()
    cache = args.cache / f"evalsets-p{args.pieces}-n{args.attacks}.npz"
    sets = _load_cache(cache)
    if sets is None:
        sets = build_sets(args.pieces, args.attacks)
        _save_cache(cache, sets)
    settings = Settings(antispoof_model="telephone", antispoof_model_dir=args.model)
    served = args.cache / f"served-p{args.pieces}-n{args.attacks}.npz"
    if served.is_file():
        with np.load(served, allow_pickle=False) as z:
            channelled = {n: [z[f"{n}/{i}"] for i in range(len(clips))] for n, clips in sets.items()}
    else:
        path = service_path(settings)
        channelled = {name: [path(c) for c in clips] for name, clips in sets.items()}
        np.savez(served, **{f"{n}/{i}": x for n, xs in channelled.items() for i, x in enumerate(xs)})
    cm = create_countermeasure(settings)
    report: dict[str, Any] = {
        "model": cm.name,
        "cpu": cpu_summary(),
        "command": "python -m benchmarks.antispoof_telephone" + (" --aasist" if args.aasist else ""),
        "main": metrics_table(score_sets(cm, channelled), cm.threshold),
    }
    if args.aasist:
        aasist = create_countermeasure(Settings(antispoof_model="aasist"))
        report["aasist"] = metrics_table(score_sets(aasist, channelled), aasist.threshold)
    report["loeo"] = {}
    for spec in args.loeo:
        eng, folder = spec.split("=", 1)
        m = create_countermeasure(Settings(antispoof_model="telephone", antispoof_model_dir=Path(folder)))
        report["loeo"][eng] = metrics_table(score_sets(m, channelled), m.threshold)
    report["seconds"] = round(time.time() - t0, 1)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped models/antispoof)")
    ap.add_argument("--pieces", type=int, default=2, help="pieces per evaluation reader")
    ap.add_argument("--attacks", type=int, default=120, help="utterances per TTS attack")
    ap.add_argument("--aasist", action="store_true", help="also score AASIST on the same pieces (slow)")
    ap.add_argument("--loeo", action="append", default=[], help="engine=DIR of a model trained without engine")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/voiceauth-cm-eval"))
    ap.add_argument("--out", type=Path, default=RESULTS / "antispoof_telephone")
    args = ap.parse_args()
    report = run(args)
    text = markdown(report)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
