"""Build the shipped cohort and back-end parameters: ``python -m voiceauth.scoring.build``.

1. Split the 251 LibriSpeech readers of ``../shared/data/librispeech-cohort`` into a cohort half and an
   evaluation half (:func:`voiceauth.scoring.evalsets.split_readers`); only the cohort half is used here.
2. Cut every cohort reader's utterance into 3-6 s pieces, pass them through each channel (wideband 16 kHz;
   narrowband = 8 kHz G.711 mu-law round trip) and embed them with the production engine (fp32).
3. For each channel, score a 2-fold protocol inside the cohort half (readers dealt into folds A and B; B's
   pieces are trials normalised with A's pieces as the cohort, and the other way round) with every candidate
   back end (plain cosine, cohort-mean centring, AS-norm top-N, both), and keep the one with the lowest EER.
   Plain cosine is kept unless a candidate beats it by a margin (``--margin``, relative EER).
4. Fit the calibration (:mod:`voiceauth.scoring.calibration`) on the chosen back end's 2-fold scores and set
   the operating points from the calibrated non-target scores (:mod:`voiceauth.scoring.operating_points`).
5. Write ``models/cohort/{cohort.npz, backend.json, MANIFEST.json}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voiceauth.embedding.base import EmbeddingEngine, FloatArray
from voiceauth.scoring.backend import ChannelBackend
from voiceauth.scoring.calibration import Calibration, fit_calibration
from voiceauth.scoring.evalsets import Piece, librispeech_pieces, load_librispeech, split_readers
from voiceauth.scoring.metrics import eer, min_dcf, threshold_at_far
from voiceauth.scoring.normalization import F64, Preprocessor, l2_normalize, wccn
from voiceauth.scoring.operating_points import TARGET_FAR
from voiceauth.scoring.shipped import COHORT_DIR, FILES, MANIFEST, sha256_file

__all__ = ["Candidate", "CANDIDATES", "embed_pieces", "evaluate_candidate", "trial_scores", "main", "write_cohort_dir"]

log = logging.getLogger(__name__)

#: the channel each shipped cohort goes through
CHANNEL_OF = {"narrowband": "g711_mulaw", "wideband": "wideband"}


@dataclass(frozen=True)
class Candidate:
    centre: bool
    top_n: int | None
    wccn: bool = False

    @property
    def name(self) -> str:
        parts = (["centre"] if self.centre else []) + (["wccn"] if self.wccn else [])
        parts += [f"asnorm{self.top_n}"] if self.top_n else []
        return "+".join(parts) or "cosine"


CANDIDATES: tuple[Candidate, ...] = tuple(
    Candidate(c, n) for c in (False, True) for n in (None, 25, 50, 100, 200, 400)
) + tuple(Candidate(True, n, wccn=True) for n in (None, 50, 100, 200))


def embed_pieces(
    engine: EmbeddingEngine, pieces: Sequence[Piece], frontend: Any | None = None, batch_size: int = 8
) -> tuple[F64, npt.NDArray[np.bool_], F64]:
    """The production path for a list of pieces: front end (VAD; when given) then the engine.

    Returns (embeddings [n, dim] in the order of ``pieces``, narrowband flags, net speech seconds). Batches
    group pieces of similar length (less padding). Where the VAD keeps under 0.5 s, the whole piece is used.
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
        speech.append(utt.speech if keep else p.samples)
        rates.append(utt.sample_rate if keep else p.sample_rate)
        narrow.append(bool(utt.narrowband))
        net.append(float(utt.quality.net_speech_s))
    order = sorted(range(len(pieces)), key=lambda i: (rates[i], speech[i].size))
    out = np.zeros((len(pieces), engine.dim), dtype=np.float64)
    i = 0
    while i < len(order):
        sr = rates[order[i]]
        idx = [j for j in order[i : i + batch_size] if rates[j] == sr]
        out[idx] = engine.embed_batch([speech[j] for j in idx], sr)
        i += len(idx)
        log.info("embedded %d / %d pieces", i, len(order))
    return out, np.array(narrow, dtype=bool), np.array(net, dtype=np.float64)


def trial_scores(matrix: F64, speakers: Sequence[str]) -> tuple[F64, F64]:
    """Target and non-target scores of every unordered pair (i < j) of a square score matrix."""
    spk = np.asarray(speakers)
    iu, ju = np.triu_indices(len(spk), k=1)
    same = spk[iu] == spk[ju]
    vals = matrix[iu, ju]
    return vals[same], vals[~same]


def make_backend(
    name: str, cand: Candidate, cohort: F64, speakers: Sequence[str], calib: Calibration | None = None
) -> ChannelBackend:
    """The back end a candidate describes, trained on ``cohort`` (embeddings of ``speakers``) only."""
    unit = l2_normalize(cohort)
    mean = unit.mean(axis=0) if cand.centre else None
    projection = wccn(Preprocessor(mean=mean)(unit), speakers) if cand.wccn else None
    return ChannelBackend(
        name=name,
        preprocessor=Preprocessor(mean=mean, projection=projection),
        cohort=unit,
        top_n=cand.top_n,
        calibration=calib or Calibration(1.0, 0.0),
    )


def two_fold_scores(cand: Candidate, emb: F64, speakers: Sequence[str]) -> tuple[F64, F64]:
    """Pooled target / non-target scores of the 2-fold protocol inside the cohort half."""
    spk = np.asarray(speakers)
    readers = sorted(set(spk.tolist()))
    fold_a = set(readers[0::2])
    in_a = np.array([s in fold_a for s in spk])
    tars, nons = [], []
    for trial_mask in (in_a, ~in_a):
        backend = make_backend("dev", cand, emb[~trial_mask], spk[~trial_mask].tolist())
        m = backend.normalized_matrix(emb[trial_mask], emb[trial_mask])
        t, n = trial_scores(m, spk[trial_mask])
        tars.append(t)
        nons.append(n)
    return np.concatenate(tars), np.concatenate(nons)


def evaluate_candidate(cand: Candidate, emb: F64, speakers: Sequence[str]) -> dict[str, float]:
    t, n = two_fold_scores(cand, emb, speakers)
    return {"eer": eer(t, n), "min_dcf": min_dcf(t, n), "target_trials": t.size, "nontarget_trials": n.size}


def choose(results: dict[str, dict[str, float]], margin: float, min_target_trials: int = 100) -> str:
    """Lowest EER; a normalising back end must beat plain cosine by ``margin`` (relative) to be chosen, and
    only when the development trials are enough to tell (``min_target_trials``); otherwise plain cosine."""
    if results["cosine"]["target_trials"] < min_target_trials:
        return "cosine"
    best = min(results, key=lambda k: (results[k]["eer"], results[k]["min_dcf"]))
    if results[best]["eer"] > (1.0 - margin) * results["cosine"]["eer"]:
        return "cosine"
    return best


def build_channel(name: str, emb: F64, speakers: Sequence[str], margin: float) -> dict[str, Any]:
    results = {c.name: evaluate_candidate(c, emb, speakers) for c in CANDIDATES}
    chosen_name = choose(results, margin)
    cand = next(c for c in CANDIDATES if c.name == chosen_name)
    t, n = two_fold_scores(cand, emb, speakers)
    calib = fit_calibration(t, n)
    cal_non = calib.scale(n)
    cal_tar = calib.scale(t)
    points = {k: round(threshold_at_far(cal_non, far), 3) for k, far in TARGET_FAR.items()}
    frr = {k: float(np.mean(cal_tar < thr)) for k, thr in points.items()}
    log.info(
        "%s: chose %s (2-fold EER %.4f; cosine %.4f)",
        name,
        chosen_name,
        results[chosen_name]["eer"],
        results["cosine"]["eer"],
    )
    return {
        "channel": CHANNEL_OF[name],
        "centre": cand.centre,
        "top_n": cand.top_n,
        "projection": cand.wccn,
        "chosen": chosen_name,
        "calibration": {"a": calib.a, "b": calib.b},
        "operating_points": points,
        "operating_points_target_far": TARGET_FAR,
        "operating_points_dev_frr": frr,
        "dev_results": results,
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=COHORT_DIR)
    ap.add_argument("--cache", type=Path, default=None, help="Reuse/store cohort embeddings here (.npz).")
    ap.add_argument("--max-pieces", type=int, default=2, help="Pieces per cohort reader (CPU budget).")
    ap.add_argument(
        "--wideband-readers",
        type=int,
        default=None,
        help="Wideband cohort from this many cohort readers (ordered by sha256 of the id) to fit a CPU budget.",
    )
    ap.add_argument("--margin", type=float, default=0.05, help="Relative EER gain needed to leave cosine.")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    files, sex = load_librispeech(args.data / "librispeech-cohort")
    cohort_readers, eval_readers = split_readers(list(files), sex)
    arrays: dict[str, np.ndarray] = {}
    channels: dict[str, Any] = {}
    engine: EmbeddingEngine | None = None
    frontend: Any = None
    for name, channel in CHANNEL_OF.items():
        subset = f"_r{args.wideband_readers}" if name == "wideband" and args.wideband_readers else ""
        cache = args.cache / f"cohort_{channel}_p{args.max_pieces}{subset}.npz" if args.cache else None
        if cache is not None and cache.is_file():
            with np.load(cache, allow_pickle=False) as z:
                emb, spk, keys = z["emb"].astype(np.float64), z["spk"].tolist(), z["keys"].tolist()
        else:
            if engine is None:
                from voiceauth.audio.frontend import FrontEnd
                from voiceauth.config import Settings
                from voiceauth.embedding.factory import create_engine

                settings = Settings(precision="fp32", device="cpu")
                engine = create_engine(settings, fetch=False)
                frontend = FrontEnd(settings)
            readers = cohort_readers
            if name == "wideband" and args.wideband_readers:
                readers = sorted(cohort_readers, key=lambda r: hashlib.sha256(r.encode()).hexdigest())
                readers = sorted(readers[: args.wideband_readers])
            pieces = librispeech_pieces(files, readers, channel, max_pieces=args.max_pieces)
            emb, _, _ = embed_pieces(engine, pieces, frontend)
            spk, keys = [p.speaker for p in pieces], [p.key for p in pieces]
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, emb=emb.astype(np.float32), spk=np.array(spk), keys=np.array(keys))
        if set(spk) & set(eval_readers):
            raise RuntimeError("an evaluation reader leaked into the cohort")  # cannot happen: split is disjoint
        arrays[name] = emb.astype(np.float32)
        arrays[f"{name}_readers"] = np.array(spk)
        channels[name] = build_channel(name, emb, spk, args.margin)
        if channels[name]["projection"]:
            cand = next(c for c in CANDIDATES if c.name == channels[name]["chosen"])
            projection = make_backend(name, cand, emb, spk).preprocessor.projection
            arrays[f"{name}_projection"] = np.asarray(projection, dtype=np.float32)

    provenance = {
        "data": "LibriSpeech train-clean readers in ../shared/data/librispeech-cohort (CC BY 4.0, openslr.org/12)",
        "split": "voiceauth.scoring.evalsets.split_readers: readers ordered by (sex, sha256(id)), even -> cohort",
        "cohort_readers": cohort_readers,
        "evaluation_readers_excluded": eval_readers,
        "pieces": f"each utterance cut into floor(len/3 s) equal pieces (3-6 s); the first {args.max_pieces} kept",
        "channels": CHANNEL_OF,
        "wideband_readers": f"first {args.wideband_readers} cohort readers by sha256 of the id"
        if args.wideband_readers
        else "all cohort readers",
        "g711": "16 kHz -> 8 kHz (torchaudio sinc) -> G.711 encode -> decode (voiceauth.audio.codecs)",
        "front_end": "voiceauth.audio.frontend.FrontEnd (Silero VAD speech only), as in production",
        "engine": "voiceauth EcapaEngine fp32, spkrec-ecapa-voxceleb (models/registry.py pins)",
        "command": "python -m voiceauth.scoring.build",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
    }
    write_cohort_dir(args.out, arrays, channels, provenance)


def write_cohort_dir(
    out: Path, arrays: dict[str, np.ndarray], channels: dict[str, Any], provenance: dict[str, Any]
) -> None:
    """Write cohort.npz, backend.json and the MANIFEST.json that pins both by sha256."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "cohort.npz", **arrays)  # type: ignore[arg-type]
    backend = {
        "format": 1,
        "score_scale": "calibrated = clip(50 + 10*log10(LR), 0, 100); LR = exp(a*normalized + b)",
        "channels": channels,
    }
    (out / "backend.json").write_text(json.dumps(backend, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    manifest = {"files": {f: {"sha256": sha256_file(out / f)} for f in FILES}, "provenance": provenance}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
