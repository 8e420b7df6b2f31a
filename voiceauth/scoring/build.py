"""Build the shipped cohort and back-end parameters: ``python -m voiceauth.scoring.build``.

1. Split the 251 LibriSpeech readers of ``../shared/data/librispeech-cohort`` into a cohort half and an
   evaluation half (:func:`voiceauth.scoring.evalsets.split_readers`); only the cohort half is used here.
2. Cut every cohort reader's utterance into 3-6 s pieces (all of them), pass them through each channel
   (wideband 16 kHz; narrowband = 8 kHz G.711 mu-law round trip) and embed them the production way: the
   front end (VAD, ``audio_band``) and the production engine (``--backend``, default ``fused-int8``).
3. For each channel, score a 5-fold protocol inside the cohort half (readers dealt into 5 folds; each fold's
   pieces are trials scored by a back end trained on the other folds' pieces) with every candidate
   back end of :mod:`voiceauth.scoring.candidates` (cohort-mean centring, LDA, WCCN, AS-norm top-N and their
   combinations), and keep the one with the lowest EER. Plain cosine is kept unless a candidate beats it by
   a margin (``--margin``, relative EER).
4. Fit the calibration (:mod:`voiceauth.scoring.calibration`) on the chosen back end's 5-fold scores and set
   the operating points from the calibrated non-target scores (:mod:`voiceauth.scoring.operating_points`).
   Narrowband (callers' short answers): the first 3 s and 2 s of every cohort piece (``--durations``) are
   embedded too and scored as probes against whole-piece enrolments in the same 5-fold protocol; the calibration's
   duration term is fitted so the non-target tails of every duration line up, and each operating point is the
   strictest of its per-duration thresholds (``operating_points_by_duration``, ``dev_by_duration``).
5. Write ``models/cohort/{cohort.npz, backend.json, MANIFEST.json}``.

    .venv/bin/python -m voiceauth.scoring.build --cache /tmp/acc-cache   # cache shared with the benchmark
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.scoring.calibration import Calibration, fit_calibration, fit_duration_term
from voiceauth.scoring.candidates import (
    CANDIDATES,
    Candidate,
    CrossTrials,
    choose,
    cross_fold_trials,
    evaluate_candidate,
    fold_scores,
    fold_trials,
    make_backend,
)
from voiceauth.scoring.evalsets import Piece, crop_pieces, librispeech_pieces, load_librispeech, split_readers
from voiceauth.scoring.metrics import eer, threshold_at_far
from voiceauth.scoring.normalization import F64
from voiceauth.scoring.operating_points import TARGET_FAR
from voiceauth.scoring.shipped import COHORT_DIR, FILES, MANIFEST, cosine_guard, sha256_file

__all__ = ["build_channel", "embed_cached", "embed_pieces", "engine_tag", "main", "production_tag", "write_cohort_dir"]

log = logging.getLogger(__name__)

#: the channel each shipped cohort goes through
CHANNEL_OF = {"narrowband": "g711_mulaw", "wideband": "wideband"}


def embed_pieces(
    engine: EmbeddingEngine, pieces: Sequence[Piece], frontend: Any | None = None, batch_size: int = 8
) -> tuple[F64, npt.NDArray[np.bool_], F64]:
    """The production path for a list of pieces: front end (VAD; when given) then the engine.

    Returns (embeddings [n, dim] in the order of ``pieces``, narrowband flags, net speech seconds): as in
    production, a wideband piece (``Utterance.speech_wide``, ``audio_band="auto"``) is embedded at full band and
    flagged not narrowband, every other piece in the telephone band. Batches group pieces of similar length
    (less padding). Where the VAD keeps under 0.5 s, the whole piece is used.
    """
    speech: list[FloatArray] = []
    rates: list[int] = []
    narrow: list[bool] = []
    net: list[float] = []
    for p in pieces:
        if frontend is None:
            speech.append(p.samples)
            rates.append(p.sample_rate)
            narrow.append(p.sample_rate <= 8000)
            net.append(p.seconds)
            continue
        utt = frontend.from_samples(p.samples, p.sample_rate)
        keep = utt.speech.size >= utt.sample_rate // 2
        best = utt.speech_wide if utt.speech_wide is not None else utt.speech
        speech.append(best if keep else p.samples)
        rates.append(utt.sample_rate if keep else p.sample_rate)
        narrow.append(utt.speech_wide is None)
        net.append(float(utt.quality.net_speech_s))
    order = sorted(range(len(pieces)), key=lambda i: (rates[i], narrow[i], speech[i].size))
    out = np.zeros((len(pieces), engine.dim), dtype=np.float64)
    i = 0
    while i < len(order):
        kind = (rates[order[i]], narrow[order[i]])
        idx = [j for j in order[i : i + batch_size] if (rates[j], narrow[j]) == kind]
        out[idx] = engine.embed_batch([speech[j] for j in idx], kind[0], telephone=kind[1])
        i += len(idx)
        log.info("embedded %d / %d pieces", i, len(order))
    return out, np.array(narrow, dtype=bool), np.array(net, dtype=np.float64)


def production_tag(engine: EmbeddingEngine, settings: Any) -> str:
    """Cache key of the production path: engine numerics + the front end's band and embedding-input settings."""
    return f"{engine_tag(engine)}-{settings.audio_band}-edge{settings.embed_edge_ms}-pause{settings.embed_max_pause_ms}"


def engine_tag(engine: EmbeddingEngine) -> str:
    """A short name for the engine's numerics (cache key): class, precision and the telephone adaptation's digest,
    e.g. ``FusedEngine-int8-tel1a2b3c4d``."""
    tag = f"{type(engine).__name__}-{getattr(engine, 'precision', 'unknown')}"
    adapter = getattr(engine, "telephone_adapter", None)
    if adapter is not None:
        from voiceauth.embedding.telephone import adapter_digest

        tag += f"-tel{adapter_digest(adapter)[:8]}"
    return tag


Embedded = tuple[F64, npt.NDArray[np.bool_], F64]  # embeddings [n, dim], narrowband flags, net speech s


def embed_cached(
    pieces: Sequence[Piece], embed: Callable[[Sequence[Piece]], Embedded], cache: Path | None, tag: str
) -> Embedded:
    """``embed(pieces)`` with an on-disk cache ``cache/<tag>.npz`` keyed by piece key + sha256 of its samples.

    ``tag`` names the engine and front end (e.g. ``FusedEngine-int8-telephone``); only missing pieces are
    embedded, so re-runs of the benchmark and the cohort build are cheap. ``cache`` None = no cache.
    """
    if cache is None:
        return embed(pieces)
    keys = [f"{p.key}:{hashlib.sha256(p.samples.tobytes()).hexdigest()[:16]}" for p in pieces]
    path = cache / f"{tag}.npz"
    stored: dict[str, tuple[F64, bool, float]] = {}
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            for k, e, b, s in zip(z["keys"].tolist(), z["emb"], z["nb"], z["net"], strict=True):
                stored[k] = (e.astype(np.float64), bool(b), float(s))
    missing = [i for i, k in enumerate(keys) if k not in stored]
    if missing:
        emb, nb, net = embed([pieces[i] for i in missing])
        for row, i in enumerate(missing):
            stored[keys[i]] = (emb[row], bool(nb[row]), float(net[row]))
        cache.mkdir(parents=True, exist_ok=True)
        all_keys = sorted(stored)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            keys=np.array(all_keys),
            emb=np.stack([stored[k][0] for k in all_keys]).astype(np.float32),
            nb=np.array([stored[k][1] for k in all_keys]),
            net=np.array([stored[k][2] for k in all_keys]),
        )
        tmp.replace(path)
    return (
        np.stack([stored[k][0] for k in keys]),
        np.array([stored[k][1] for k in keys], dtype=bool),
        np.array([stored[k][2] for k in keys], dtype=np.float64),
    )


def guarded_dev_eer(cand: Candidate, emb: F64, speakers: Sequence[str]) -> float:
    """Development EER of the score decisions use: calibrated, then capped by the raw-cosine guard (as
    :class:`~voiceauth.scoring.backend.ChannelBackend` does), calibration and operating points fitted on these
    development scores as the shipped ones are. Plain cosine is not guarded."""
    t, n, raw_t, raw_n = fold_trials(cand, emb, speakers)
    if not (cand.centre or cand.projects or cand.top_n):
        return eer(t, n)
    calib = fit_calibration(t, n)
    cal_t, cal_n = calib.scale(t), calib.scale(n)
    points = {k: threshold_at_far(cal_n, far) for k, far in TARGET_FAR.items()}
    guard = cosine_guard(emb, speakers, points, TARGET_FAR)
    return eer(np.minimum(cal_t, guard(raw_t)), np.minimum(cal_n, guard(raw_n)))


def duration_buckets(
    cand: Candidate,
    emb: F64,
    speakers: Sequence[str],
    full_s: F64,
    crops: dict[str, tuple[F64, F64]],
) -> dict[str, CrossTrials]:
    """Development trials per probe duration: ``full`` = the whole-piece protocol of :func:`fold_trials` (column =
    probe), and one bucket per crop (whole pieces enrolled, the crop of another piece as probe)."""
    out: dict[str, CrossTrials] = {}
    spk = np.asarray(speakers)
    out["full"] = cross_fold_trials(cand, emb, emb, full_s, spk.tolist())
    for label, (probe, probe_s) in crops.items():
        out[label] = cross_fold_trials(cand, emb, probe, probe_s, spk.tolist())
    return out


def duration_report(
    calib: Calibration, buckets: dict[str, CrossTrials], guard: Any, points: dict[str, float]
) -> dict[str, Any]:
    """Per bucket: EER of the guarded calibrated score, median probe speech, FAR / FRR at every operating point."""
    rep: dict[str, Any] = {}
    for label, b in buckets.items():
        cal_t = np.minimum(calib.scale(b.target, b.target_s), guard(b.raw_target))
        cal_n = np.minimum(calib.scale(b.nontarget, b.nontarget_s), guard(b.raw_nontarget))
        rep[label] = {
            "eer": eer(cal_t, cal_n),
            "normalized_eer": eer(b.target, b.nontarget),
            "median_probe_speech_s": float(np.median(b.target_s)),
            "target_trials": int(b.target.size),
            "nontarget_trials": int(b.nontarget.size),
            "far": {k: float(np.mean(cal_n >= thr)) for k, thr in points.items()},
            "frr": {k: float(np.mean(cal_t < thr)) for k, thr in points.items()},
        }
    return rep


def build_channel(
    name: str,
    emb: F64,
    speakers: Sequence[str],
    margin: float,
    full_s: F64 | None = None,
    crops: dict[str, tuple[F64, F64]] | None = None,
) -> dict[str, Any]:
    """Choose, calibrate and set the operating points of one channel's back end on the development trials.

    Candidates are compared by the EER of the guarded, calibrated score (what decisions use): the raw-cosine
    guard cancels part of some back ends' gain (on this cohort centre+asnorm300's normalised EER was the lowest,
    its guarded one was not).

    With ``crops`` (label -> the cohort pieces' crops' embeddings and net speech, e.g. 3 s and 2 s answers) the
    calibration gets its duration term (:func:`~voiceauth.scoring.calibration.fit_duration_term`) and every
    operating point is the strictest of its per-duration thresholds, so it holds its false-accept rate on whole
    pieces and on every crop length of the development trials."""
    results = {c.name: evaluate_candidate(c, emb, speakers) for c in CANDIDATES}
    for c in CANDIDATES:
        results[c.name]["normalized_eer"] = results[c.name]["eer"]
        results[c.name]["eer"] = guarded_dev_eer(c, emb, speakers)
    chosen_name = choose(results, margin)
    cand = next(c for c in CANDIDATES if c.name == chosen_name)
    t, n = fold_scores(cand, emb, speakers)
    calib = fit_calibration(t, n)
    buckets: dict[str, CrossTrials] = {}
    if crops and full_s is not None:
        buckets = duration_buckets(cand, emb, speakers, full_s, crops)
        calib = fit_duration_term(
            calib, [(b.nontarget, b.nontarget_s) for b in buckets.values()], list(TARGET_FAR.values())
        )
        by_duration = {
            label: {k: threshold_at_far(calib.scale(b.nontarget, b.nontarget_s), far) for k, far in TARGET_FAR.items()}
            for label, b in buckets.items()
        }
        # rounded up, so the shipped number never lets through more than the target on any bucket
        points = {k: math.ceil(1000 * max(by_duration[lb][k] for lb in by_duration)) / 1000 for k in TARGET_FAR}
        cal_tar = calib.scale(buckets["full"].target, buckets["full"].target_s)
    else:
        by_duration = {}
        cal_non = calib.scale(n)
        cal_tar = calib.scale(t)
        points = {k: round(threshold_at_far(cal_non, far), 3) for k, far in TARGET_FAR.items()}
    frr = {k: float(np.mean(cal_tar < thr)) for k, thr in points.items()}
    log.info(
        "%s: chose %s (5-fold EER %.4f; cosine %.4f); duration term c=%.3f",
        name,
        chosen_name,
        results[chosen_name]["eer"],
        results["cosine"]["eer"],
        calib.c,
    )
    out: dict[str, Any] = {
        "channel": CHANNEL_OF[name],
        "centre": cand.centre,
        "top_n": cand.top_n,
        "projection": cand.projects,
        "lda_dim": cand.lda_dim,
        "wccn": cand.wccn,
        "chosen": chosen_name,
        "calibration": {"a": calib.a, "b": calib.b, "c": calib.c, "cap_s": calib.cap_s},
        "operating_points": points,
        "operating_points_target_far": TARGET_FAR,
        "operating_points_dev_frr": frr,
        "dev_results": results,
    }
    if buckets:
        guard = cosine_guard(emb, speakers, points, TARGET_FAR)
        out["operating_points_by_duration"] = by_duration
        out["dev_by_duration"] = duration_report(calib, buckets, guard, points)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=COHORT_DIR)
    ap.add_argument("--backend", default="fused-int8", help="Production embedding backend (Settings.backend).")
    ap.add_argument("--cache", type=Path, default=None, help="Embedding cache folder (shared with the benchmark).")
    ap.add_argument("--max-pieces", type=int, default=None, help="Pieces per cohort reader (default: all).")
    ap.add_argument("--margin", type=float, default=0.05, help="Relative EER gain needed to leave cosine.")
    ap.add_argument(
        "--durations",
        type=lambda v: [float(x) for x in v.split(",") if x],
        default=[3.0, 2.0],
        help="Crop lengths (s, comma-separated) of the narrowband duration buckets (default 3,2; '' = none).",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from voiceauth.audio.frontend import FrontEnd
    from voiceauth.config import Settings
    from voiceauth.embedding.factory import create_engine

    settings = Settings(backend=args.backend)
    engine = create_engine(settings, fetch=False)
    frontend = FrontEnd(settings)
    tag = production_tag(engine, settings)
    files, sex = load_librispeech(args.data / "librispeech-cohort")
    cohort_readers, eval_readers = split_readers(list(files), sex)
    arrays: dict[str, np.ndarray] = {}
    channels: dict[str, Any] = {}
    for name, channel in CHANNEL_OF.items():
        pieces = librispeech_pieces(files, cohort_readers, channel, max_pieces=args.max_pieces)
        emb, _, full_s = embed_cached(pieces, lambda p: embed_pieces(engine, p, frontend), args.cache, tag)
        spk = [p.speaker for p in pieces]
        crops: dict[str, tuple[F64, F64]] = {}
        if name == "narrowband":  # callers' short answers: the first seconds of every piece as probes
            for sec in args.durations:
                cropped = crop_pieces(pieces, sec)
                c_emb, _, c_s = embed_cached(cropped, lambda p: embed_pieces(engine, p, frontend), args.cache, tag)
                crops[f"{sec:g}s"] = (c_emb, c_s)
        if set(spk) & set(eval_readers):
            raise RuntimeError("an evaluation reader leaked into the cohort")  # cannot happen: split is disjoint
        arrays[name] = emb.astype(np.float32)
        arrays[f"{name}_readers"] = np.array(spk)
        channels[name] = build_channel(name, emb, spk, args.margin, full_s=full_s, crops=crops)
        if channels[name]["projection"]:
            cand = next(c for c in CANDIDATES if c.name == channels[name]["chosen"])
            projection = make_backend(name, cand, emb, spk).preprocessor.projection
            arrays[f"{name}_projection"] = np.asarray(projection, dtype=np.float32)

    pieces_note = "all" if args.max_pieces is None else f"the first {args.max_pieces}"
    provenance = {
        "data": "LibriSpeech train-clean readers in ../shared/data/librispeech-cohort (CC BY 4.0, openslr.org/12)",
        "split": "voiceauth.scoring.evalsets.split_readers: readers ordered by (sex, sha256(id)), even -> cohort",
        "cohort_readers": cohort_readers,
        "evaluation_readers_excluded": eval_readers,
        "pieces": f"each utterance cut into floor(len/3 s) equal pieces (3-6 s); {pieces_note} kept",
        "pieces_per_channel": {name: int(arrays[name].shape[0]) for name in CHANNEL_OF},
        "duration_buckets": "narrowband: whole pieces, and the first "
        + ", ".join(f"{d:g} s" for d in args.durations)
        + " of every piece as probes against whole-piece enrolments (voiceauth.scoring.evalsets.crop_pieces)",
        "channels": CHANNEL_OF,
        "g711": "16 kHz -> 8 kHz (torchaudio sinc) -> G.711 encode -> decode (voiceauth.audio.codecs)",
        "front_end": f"voiceauth.audio.frontend.FrontEnd (Silero VAD speech with {settings.embed_edge_ms} ms edges,"
        f" pauses capped at {settings.embed_max_pause_ms} ms; audio_band={settings.audio_band!r}: wideband pieces at"
        " full band, G.711 pieces in the telephone band), as in production",
        "engine": f"voiceauth {tag} (backend {args.backend!r}), spkrec-ecapa-voxceleb (models/registry.py pins)",
        "command": "python -m voiceauth.scoring.build" + (" " + " ".join(argv) if argv else ""),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
    }
    from voiceauth.embedding.space import telephone_space

    write_cohort_dir(args.out, arrays, channels, provenance, space=telephone_space(engine))


def write_cohort_dir(
    out: Path,
    arrays: dict[str, np.ndarray],
    channels: dict[str, Any],
    provenance: dict[str, Any],
    *,
    space: str | None = None,
) -> None:
    """Write cohort.npz, backend.json and the MANIFEST.json that pins both by sha256 (and records ``space``, the
    network of the narrowband cohort, which the service checks against its engine at start)."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "cohort.npz", **arrays)  # type: ignore[arg-type]
    backend = {
        "format": 1,
        "score_scale": "calibrated = clip(50 + 10*log10(LR), 0, 100); LR = exp(a*normalized + b)",
        "channels": channels,
    }
    (out / "backend.json").write_text(json.dumps(backend, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    manifest: dict[str, Any] = {"files": {f: {"sha256": sha256_file(out / f)} for f in FILES}}
    if space is not None:
        manifest["telephone_space"] = space
    manifest["provenance"] = provenance
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
