"""Accuracy: SpeechBrain's own pipeline + plain cosine vs voiceauth's production path, same data, one run.

Sets (all from ``../shared/data``; evaluation readers are never in the shipped cohort):

* ``librispeech-16k``        - evaluation half of the LibriSpeech readers, every 3-6 s piece, 16 kHz (full band)
* ``librispeech-g711-mulaw`` - the same pieces through 8 kHz G.711 mu-law (telephone channel)
* ``librispeech-g711-alaw``  - the same pieces through 8 kHz G.711 A-law (optional: ``--sets``)
* ``fsdd-digits-g711-alaw``  - FSDD strings of 5-8 digits (~3 s) of 6 speakers through G.711 A-law

Baseline = ``voiceauth.embedding.reference.load_reference`` (SpeechBrain ``SpeakerRecognition``, fp32) on the
whole piece (8 kHz resampled to 16 kHz) + plain cosine. Production = what ``voiceauth evaluate`` runs: the
front end (VAD, band handling; the speech with its context is embedded, 16 kHz pieces at full band) + the
production engine (``--backend``, default
``fused-int8``) + ``create_scorer`` (the shipped ``models/cohort`` back end, calibration and cosine guard);
its EER is measured on the calibrated 0-100 score that thresholds apply to. Every unordered pair of pieces is a trial.

Ablation: every candidate back end of :mod:`voiceauth.scoring.candidates` (cohort-mean centring, LDA, WCCN,
AS-norm top-N) is trained on the cohort half's production embeddings of the matching channel (16 kHz for
``librispeech-16k``, G.711 mu-law for the telephone sets) and scored on every set; the shipped choice was made
on the cohort half alone (``python -m voiceauth.scoring.build``), these rows only show what won where.

Embeddings are cached in ``--cache`` (default ``/tmp/acc-cache``), keyed by piece + sha256 of its samples +
engine, so a re-run only scores. Writes ``benchmarks/results/accuracy.{md,json}``::

    .venv/bin/python -m benchmarks.accuracy_scoring     # ~30-40 min on 2 busy cores when nothing is cached
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF

from benchmarks.measure import cpu_summary
from models.fetch import ensure_model
from voiceauth.config import Settings
from voiceauth.embedding.factory import create_engine
from voiceauth.embedding.reference import load_reference
from voiceauth.scoring.build import Embedded, embed_cached, embed_pieces, production_tag
from voiceauth.scoring.candidates import CANDIDATES, make_backend, trial_scores
from voiceauth.scoring.evalsets import (
    Piece,
    crop_pieces,
    fsdd_digit_strings,
    librispeech_pieces,
    load_librispeech,
    split_readers,
)
from voiceauth.scoring.evaluation import cross_trials, evaluate, evaluate_cross, pair_scores
from voiceauth.scoring.factory import create_scorer
from voiceauth.scoring.metrics import eer, min_dcf
from voiceauth.scoring.shipped import load_backend_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_SETS = ("librispeech-g711-mulaw", "fsdd-digits-g711-alaw", "librispeech-16k")
DEFAULT_DURATIONS = ("full", "3", "2")
#: full-length production EERs of the telephone sets before duration-aware scoring (issue 18): not to get worse
FULL_LENGTH_LIMITS = {"librispeech-g711-mulaw": 0.0150, "fsdd-digits-g711-alaw": 0.0096}
SHORT_RATIO_LIMIT = 0.8  # production EER <= 0.8 x SpeechBrain + cosine at every crop length
LS_CHANNEL = {
    "librispeech-16k": "wideband",
    "librispeech-g711-mulaw": "g711_mulaw",
    "librispeech-g711-alaw": "g711_alaw",
}

log = logging.getLogger("benchmarks.accuracy")


def build_sets(
    data: Path, which: Sequence[str], max_pieces: int | None, fsdd_per_speaker: int
) -> tuple[dict[str, list[Piece]], dict[str, list[Piece]]]:
    """(evaluation sets, cohort-half pieces per cohort channel) for the ablation."""
    files, sex = load_librispeech(data / "librispeech-cohort")
    cohort_readers, eval_readers = split_readers(list(files), sex)
    sets: dict[str, list[Piece]] = {}
    for name in which:
        if name in LS_CHANNEL:
            sets[name] = librispeech_pieces(files, eval_readers, LS_CHANNEL[name], max_pieces=max_pieces)
        elif name == "fsdd-digits-g711-alaw":
            sets[name] = fsdd_digit_strings(data / "fsdd", per_speaker=fsdd_per_speaker, channel="g711_alaw")
        else:
            raise SystemExit(f"unknown set {name!r}; use one of {', '.join([*LS_CHANNEL, 'fsdd-digits-g711-alaw'])}")
    cohort = {
        ch: librispeech_pieces(files, cohort_readers, ch, max_pieces=max_pieces) for ch in ("wideband", "g711_mulaw")
    }
    return sets, cohort


def embed_reference(ref: Any, pieces: Sequence[Piece], batch: int = 8) -> Embedded:
    """SpeechBrain's pipeline: 16 kHz waveform (resampled like its audio normaliser would) -> encode_batch."""
    wavs = [
        AF.resample(torch.from_numpy(p.samples), p.sample_rate, 16000)
        if p.sample_rate != 16000
        else torch.from_numpy(p.samples)
        for p in pieces
    ]
    out = np.zeros((len(pieces), 192))
    order = sorted(range(len(wavs)), key=lambda i: wavs[i].numel())
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        longest = max(wavs[i].numel() for i in idx)
        x = torch.zeros(len(idx), longest)
        for k, i in enumerate(idx):
            x[k, : wavs[i].numel()] = wavs[i]
        lens = torch.tensor([wavs[i].numel() / longest for i in idx])
        with torch.inference_mode():
            out[idx] = ref.encode_batch(x, lens).reshape(len(idx), -1).numpy()
        log.info("reference: %d / %d pieces", min(start + batch, len(order)), len(order))
    return out, np.array([p.sample_rate <= 8000 for p in pieces]), np.array([p.seconds for p in pieces])


def operating_point_rates(
    scorer: Any, emb: np.ndarray, speakers: Sequence[str], nb: Sequence[bool], net: Sequence[float]
) -> dict[str, dict[str, float]]:
    """False-accept and false-reject rates of the calibrated score at the shipped operating points (accept when
    the score is at least the threshold, as the verifier decides)."""
    from voiceauth.scoring.operating_points import default_operating_points

    _, _, cal, iu, ju = pair_scores(scorer, emb, nb, net)
    spk = np.asarray(speakers)
    same = spk[iu] == spk[ju]
    return {
        name: {
            "threshold": float(thr),
            "far": float(np.mean(cal[~same] >= thr)),
            "frr": float(np.mean(cal[same] < thr)),
        }
        for name, thr in sorted(default_operating_points().items())
    }


def rates_at_points(tar: np.ndarray, non: np.ndarray) -> dict[str, dict[str, float]]:
    """FAR / FRR of calibrated target and non-target scores at the shipped operating points."""
    from voiceauth.scoring.operating_points import default_operating_points

    return {
        name: {"threshold": float(thr), "far": float(np.mean(non >= thr)), "frr": float(np.mean(tar < thr))}
        for name, thr in sorted(default_operating_points().items())
    }


def cross_cosine_eer(enrol: np.ndarray, probe: np.ndarray, speakers: Sequence[str]) -> float:
    """EER of plain cosine, whole piece i enrolled against the crop of piece j (every ordered pair i != j)."""
    e = enrol / np.linalg.norm(enrol, axis=1, keepdims=True)
    p = probe / np.linalg.norm(probe, axis=1, keepdims=True)
    t, n = cross_trials(e @ p.T, speakers)
    return eer(t, n)


def cosine_metrics(emb: np.ndarray, speakers: Sequence[str]) -> tuple[float, float]:
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    t, n = trial_scores(x @ x.T, speakers)
    return eer(t, n), min_dcf(t, n)


def ablation(
    cohort: dict[str, Embedded], cohort_spk: dict[str, list[str]], emb: np.ndarray, spk: list[str], ch: str
) -> dict[str, dict[str, float]]:
    """EER / minDCF of every candidate trained on the cohort half of channel ``ch``, scored on one set."""
    out: dict[str, dict[str, float]] = {}
    for cand in CANDIDATES:
        backend = make_backend("ablation", cand, cohort[ch][0], cohort_spk[ch])
        t, n = trial_scores(backend.normalized_matrix(emb, emb), spk)
        out[cand.name] = {"eer": eer(t, n), "min_dcf": min_dcf(t, n)}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    ap.add_argument("--max-pieces", type=int, default=None, help="Pieces per reader (default: all of them).")
    ap.add_argument("--fsdd-per-speaker", type=int, default=40, help="Digit strings per FSDD speaker.")
    ap.add_argument("--backend", default="fused-int8", help="Production embedding backend (Settings.backend).")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/acc-cache"), help="Embedding cache folder.")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument(
        "--durations",
        type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
        default=list(DEFAULT_DURATIONS),
        help="Probe lengths for the telephone sets: 'full' and/or seconds cropped from the start of every piece, "
        "enrolled whole (default full,3,2).",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cache = None if args.no_cache else args.cache
    settings = Settings(backend=args.backend)
    t0 = time.time()
    sets, cohort_pieces = build_sets(args.data, args.sets, args.max_pieces, args.fsdd_per_speaker)
    engine = create_engine(settings, fetch=False)
    from voiceauth.audio.frontend import FrontEnd

    frontend = FrontEnd(settings)
    prod_tag = production_tag(engine, settings)
    reference: list[Any] = []

    def ref_embed(pieces: Sequence[Piece]) -> Embedded:
        if not reference:
            reference.append(load_reference(ensure_model(settings, fetch=False)))
        return embed_reference(reference[0], pieces)

    def prod_embed(pieces: Sequence[Piece]) -> Embedded:
        return embed_pieces(engine, pieces, frontend)

    scorer = create_scorer(settings)
    cohort: dict[str, Embedded] = {}
    cohort_spk: dict[str, list[str]] = {}
    if not args.no_ablation:
        for ch, pieces in cohort_pieces.items():
            cohort[ch] = embed_cached(pieces, prod_embed, cache, prod_tag)
            cohort_spk[ch] = [p.speaker for p in pieces]
    rows: list[dict[str, Any]] = []
    for name, pieces in sets.items():
        speakers = [p.speaker for p in pieces]
        base = embed_cached(pieces, ref_embed, cache, "speechbrain-reference")
        emb, nb, net = embed_cached(pieces, prod_embed, cache, prod_tag)
        b_eer, b_dcf = cosine_metrics(base[0], speakers)
        res = evaluate(scorer, emb, speakers, nb.tolist(), net.tolist())
        telephone = name != "librispeech-16k"
        row: dict[str, Any] = {
            "set": name,
            "duration": "full",
            "median_probe_speech_s": float(np.median(net)),
            "telephone": telephone,
            "files": res["files"],
            "speakers": res["speakers"],
            "target_trials": res["target_trials"],
            "nontarget_trials": res["nontarget_trials"],
            "baseline_eer": b_eer,
            "baseline_min_dcf": b_dcf,
            "engine_cosine_eer": res["raw_cosine_eer"],
            "engine_cosine_min_dcf": res["raw_cosine_min_dcf"],
            "production_eer": res["eer"],
            "production_min_dcf": res["min_dcf"],
            "relative_eer_change": (res["eer"] - b_eer) / b_eer if b_eer > 0 else float("nan"),
            "narrowband_files": int(nb.sum()),
            "operating_points": operating_point_rates(scorer, emb, speakers, nb.tolist(), net.tolist()),
        }
        if not args.no_ablation:
            row["ablation"] = ablation(cohort, cohort_spk, emb, speakers, "g711_mulaw" if telephone else "wideband")
        if "full" in args.durations or not telephone:
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "ablation"}), flush=True)
        if not telephone:
            continue
        for d in (x for x in args.durations if x != "full"):
            crops = crop_pieces(pieces, float(d))
            base_c = embed_cached(crops, ref_embed, cache, "speechbrain-reference")
            emb_c, _, net_c = embed_cached(crops, prod_embed, cache, prod_tag)
            b_eer_c = cross_cosine_eer(base[0], base_c[0], speakers)
            rc = evaluate_cross(scorer, emb, emb_c, speakers, True, net_c.tolist())
            tar, non = cross_trials(rc["calibrated"], speakers)
            crow: dict[str, Any] = {
                "set": name,
                "duration": f"{float(d):g}s",
                "median_probe_speech_s": float(np.median(net_c)),
                "telephone": True,
                "files": rc["files"],
                "speakers": rc["speakers"],
                "target_trials": rc["target_trials"],
                "nontarget_trials": rc["nontarget_trials"],
                "baseline_eer": b_eer_c,
                "engine_cosine_eer": rc["raw_cosine_eer"],
                "production_eer": rc["eer"],
                "production_min_dcf": rc["min_dcf"],
                "relative_eer_change": (rc["eer"] - b_eer_c) / b_eer_c if b_eer_c > 0 else float("nan"),
                "ratio": rc["eer"] / b_eer_c if b_eer_c > 0 else float("nan"),
                "operating_points": rates_at_points(tar, non),
            }
            rows.append(crow)
            print(json.dumps(crow), flush=True)
    tel = [r for r in rows if r["telephone"] and r["duration"] == "full"]
    short = [r for r in rows if r["duration"] != "full"]
    wide = [r for r in rows if not r["telephone"]]
    mean_change = float(np.mean([r["relative_eer_change"] for r in tel])) if tel else None
    checks = {
        "every_telephone_set_lower": all(r["production_eer"] < r["baseline_eer"] for r in tel) if tel else None,
        "telephone_mean_relative_change": mean_change,
        "telephone_mean_at_least_20pct_lower": mean_change is not None and mean_change <= -0.2,
        "wideband_within_0.1_points": all(r["production_eer"] <= r["baseline_eer"] + 0.001 for r in wide)
        if wide
        else None,
        "short_answers_at_most_0.8x_speechbrain": all(r["ratio"] <= SHORT_RATIO_LIMIT for r in short)
        if short
        else None,
        "full_length_no_worse_than_before": all(
            r["production_eer"] <= FULL_LENGTH_LIMITS[r["set"]] for r in tel if r["set"] in FULL_LENGTH_LIMITS
        )
        if tel
        else None,
        "high_security_far_at_most_0.1pct_every_duration": all(
            r["operating_points"]["high_security"]["far"] <= 0.001 for r in rows if r["telephone"]
        ),
    }
    spec = load_backend_json(settings.scoring_cohort_dir) if settings.scoring_cohort_dir else load_backend_json()
    meta = {
        "command": " ".join(["python -m benchmarks.accuracy_scoring", *(argv if argv is not None else sys.argv[1:])]),
        "seconds": round(time.time() - t0, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "engine": prod_tag,
        "scorer": type(scorer).__name__,
        "shipped_choice": {ch: spec["channels"][ch]["chosen"] for ch in ("wideband", "narrowband")},
        "max_pieces": args.max_pieces,
        "cache": str(cache) if cache is not None else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "fsdd_per_speaker": args.fsdd_per_speaker,
        "durations": args.durations,
        "cpu": cpu_summary(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(
        json.dumps({"rows": rows, "checks": checks, "meta": meta}, indent=2) + "\n", encoding="utf-8"
    )
    text = report(rows, checks, meta)
    (args.out / "accuracy.md").write_text(text, encoding="utf-8")
    print(text)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table's lines."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def report(rows: list[dict[str, Any]], checks: dict[str, Any], meta: dict[str, Any]) -> str:
    pieces = "every 3-6 s piece" if meta["max_pieces"] is None else f"the first {meta['max_pieces']} pieces"
    lines = [
        "# Accuracy: SpeechBrain reference + plain cosine vs voiceauth production scoring",
        "",
        f"CPU: {meta.get('cpu', 'unknown')}.",
        "",
        f"Command: `{meta['command']}` ({meta['seconds']} s with embeddings from the cache `{meta['cache']}`;"
        " a cold run embeds ~2,300 pieces, about 40 min on 2 busy cores; load average"
        f" {meta['load_average_1m']}). EER in %, minDCF at p_target 0.01.",
        "Baseline = SpeechBrain `SpeakerRecognition` (fp32) embeddings of the whole piece + cosine. Production ="
        f" front end (speech with context; band per `audio_band`) + `{meta['engine']}` engine + shipped back end"
        " (wideband:"
        f" `{meta['shipped_choice']['wideband']}`, narrowband: `{meta['shipped_choice']['narrowband']}`),"
        " calibration and the raw-cosine guard; EER of the calibrated score.",
        "",
        "| set | files | target / non-target trials | baseline EER | engine cosine EER | production EER "
        "| change | baseline minDCF | production minDCF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    full = [r for r in rows if r["duration"] == "full"]
    for r in full:
        lines.append(
            f"| {r['set']} | {r['files']} | {r['target_trials']} / {r['nontarget_trials']} | "
            f"{100 * r['baseline_eer']:.2f} | {100 * r['engine_cosine_eer']:.2f} | {100 * r['production_eer']:.2f} | "
            f"{100 * r['relative_eer_change']:+.1f}% | {r['baseline_min_dcf']:.3f} | {r['production_min_dcf']:.3f} |"
        )
    by_duration = [r for r in rows if r["telephone"]]
    if any(r["duration"] != "full" for r in by_duration):
        lines += [
            "",
            "## By probe duration (telephone sets)",
            "",
            "Probes are the first 2 s / 3 s of every piece (a caller's answer starts where the piece starts), each"
            " against every other piece enrolled whole (ordered pairs); `full` rows are the table above (unordered"
            " pairs of whole pieces). Both systems see the same crops: SpeechBrain embeds the whole crop, production"
            " runs its front end on it. Median probe speech = net speech the VAD found.",
            "",
            *_md_table(
                [
                    "set",
                    "probe",
                    "median probe speech (s)",
                    "SpeechBrain EER",
                    "production EER",
                    "ratio",
                    "FAR / FRR at high_security",
                ],
                [
                    [
                        r["set"],
                        r["duration"],
                        f"{r['median_probe_speech_s']:.2f}",
                        f"{100 * r['baseline_eer']:.2f}",
                        f"{100 * r['production_eer']:.2f}",
                        f"x{r['production_eer'] / r['baseline_eer']:.2f}" if r["baseline_eer"] > 0 else "-",
                        f"{100 * r['operating_points']['high_security']['far']:.3f} / "
                        f"{100 * r['operating_points']['high_security']['frr']:.1f}",
                    ]
                    for r in by_duration
                ],
            ),
        ]
    lines += ["", "Checks: " + ", ".join(f"{k} = {v}" for k, v in checks.items()), ""]
    with_points = [r for r in rows if "operating_points" in r]
    if with_points:
        names = list(with_points[0]["operating_points"])
        lines += [
            "False-accept / false-reject rates (%) of production decisions at the shipped operating points"
            " (thresholds on the calibrated score; targets: FAR 0.1% `high_security`, 0.5% `balanced`, 1%"
            " `convenience`, measured on the cohort half):",
            "",
            *_md_table(
                ["set", *(f"{n} ({with_points[0]['operating_points'][n]['threshold']:.1f})" for n in names)],
                [
                    [r["set"] + ("" if r["duration"] == "full" else f" ({r['duration']})")]
                    + [
                        f"{100 * r['operating_points'][n]['far']:.2f} / {100 * r['operating_points'][n]['frr']:.1f}"
                        for n in names
                    ]
                    for r in with_points
                ],
            ),
            "",
        ]
    with_ablation = [r for r in rows if "ablation" in r]
    if with_ablation:
        lines += [
            "## Ablation: every candidate back end, trained on the cohort half, EER % (minDCF) per set",
            "",
            "Telephone sets use the G.711 mu-law cohort, `librispeech-16k` the 16 kHz (full-band) cohort. The shipped"
            " choice per channel was made on the cohort half's 5-fold development trials only"
            " (`models/cohort/backend.json` `dev_results`); these columns are for reading, not for choosing. The"
            " calibrated production score adds calibration and the guard to the chosen row.",
            "",
            *_md_table(
                ["back end", *(r["set"] for r in with_ablation)],
                [
                    [cand.name]
                    + [
                        f"{100 * r['ablation'][cand.name]['eer']:.2f} ({r['ablation'][cand.name]['min_dcf']:.3f})"
                        for r in with_ablation
                    ]
                    for cand in CANDIDATES
                ],
            ),
            "",
        ]
    lines += [
        "Method: LibriSpeech readers split by `voiceauth.scoring.evalsets.split_readers` (disjoint halves, sex-"
        "balanced); the shipped cohort, back end, calibration and operating points come from the cohort half only"
        f" (`python -m voiceauth.scoring.build`); these rows use the evaluation half only, {pieces} of each reader;"
        f" FSDD: {meta['fsdd_per_speaker']} strings of 5-8 digits per speaker. Every unordered pair of pieces is a"
        " trial; target = same reader. The baseline embeds the whole piece; production embeds what the front end"
        " hands the engine: the VAD speech with its context (500 ms edges, pauses capped at 1 s), G.711 pieces in"
        " the telephone band and 16 kHz pieces at full band (`audio_band=auto`; two full-band files are compared"
        " at full band with the wideband back end).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
