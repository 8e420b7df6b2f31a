"""Trials for calibration: every pair of files of a speaker folder, or an explicit trial list, scored in production.

A folder ``DIR/<speaker>/<audio>`` gives every unordered pair of files as a trial (target when both files are in
the same folder). A trial list is a text file with one trial per line::

    # label  enrolment-file  probe-file      (paths relative to the list's folder; label target/nontarget or 1/0)
    target    george/0_george_0.wav  george/1_george_3.wav
    nontarget george/0_george_0.wav  theo/0_theo_1.wav

and the speaker of a file is the name of its folder. Each file is embedded once through the production front end
and engine (:func:`voiceauth.cli.evaluate.embed_file`), and each trial is scored by the production scorer on the
calibrated 0-100 scale that tenant thresholds apply to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from voiceauth.calibration.stats import CalibrationError, Trials
from voiceauth.scoring.backend import CohortScorer
from voiceauth.scoring.base import Scorer

if TYPE_CHECKING:
    from voiceauth.cli.evaluate import FileEmbedding

__all__ = ["TrialSpec", "calibrated_pair_scores", "read_trial_list", "score_trials", "trial_spec"]

#: (speaker, file) per file, and (i, j) file indices per trial
TrialSpec = tuple[list[tuple[str, Path]], list[tuple[int, int]]]

_LABELS = {"target": True, "1": True, "tgt": True, "nontarget": False, "non-target": False, "0": False, "imp": False}


def read_trial_list(path: Path) -> TrialSpec:
    """Parse a trial list (see the module doc) -> files and trial index pairs; labels are checked against folders."""
    files: list[tuple[str, Path]] = []
    index: dict[Path, int] = {}
    pairs: list[tuple[int, int]] = []
    base = path.parent
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        parts = body.split()
        if len(parts) != 3 or parts[0].lower() not in _LABELS:
            raise CalibrationError(
                f"{path}:{lineno}: {line.strip()!r} is not a trial; use '<target|nontarget> <enrol file> <probe file>'"
            )
        ids = []
        for name in parts[1:]:
            f = (base / name).resolve()
            if not f.is_file():
                raise CalibrationError(f"{path}:{lineno}: audio file {name!r} does not exist")
            if f not in index:
                index[f] = len(files)
                files.append((f.parent.name, f))
            ids.append(index[f])
        same = files[ids[0]][0] == files[ids[1]][0]
        if same != _LABELS[parts[0].lower()]:
            raise CalibrationError(
                f"{path}:{lineno}: label {parts[0]!r} disagrees with the folders (speaker = folder name) of the files"
            )
        pairs.append((ids[0], ids[1]))
    if not pairs:
        raise CalibrationError(f"{path} holds no trials")
    return files, pairs


def trial_spec(source: Path) -> TrialSpec:
    """Files and trials of a speaker folder (all pairs) or a trial list file."""
    if source.is_file():
        return read_trial_list(source)
    from voiceauth.cli.evaluate import list_speaker_files

    files = list_speaker_files(source)
    pairs = [(i, j) for i in range(len(files)) for j in range(i + 1, len(files))]
    return files, pairs


def calibrated_pair_scores(
    scorer: Scorer,
    embeddings: npt.ArrayLike,
    narrowband: Sequence[bool],
    speech_s: Sequence[float],
    pairs: Sequence[tuple[int, int]],
    telephone: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """Calibrated (0-100) score of each pair (i enrolment, j probe): two full-band files on their full-band
    embeddings, any other pair on telephone-band ones (``telephone``: each file's; None = ``embeddings``)."""
    x = np.asarray(embeddings, dtype=np.float64)
    tel = x if telephone is None else np.asarray(telephone, dtype=np.float64)
    nb = np.asarray(narrowband, dtype=bool)
    i = np.array([p[0] for p in pairs], dtype=np.int64)
    j = np.array([p[1] for p in pairs], dtype=np.int64)
    pair_nb = nb[i] | nb[j]
    out = np.empty(i.size)
    if isinstance(scorer, CohortScorer):  # all pairs at once, same normalisation code as CohortScorer.score
        for flag in (False, True):
            sel = pair_nb == flag
            if np.any(sel):
                _, _, cal = scorer.score_matrix(tel if flag else x, narrowband=flag, speech_s=speech_s)
                out[sel] = cal[i[sel], j[sel]]
        return out
    for k in range(i.size):
        src = tel if pair_nb[k] else x
        out[k] = scorer.score(
            src[i[k]].astype(np.float32),
            src[j[k]].astype(np.float32),
            narrowband=bool(pair_nb[k]),
            probe_speech_s=float(speech_s[j[k]]),
        ).calibrated
    return out


def score_trials(
    spec: TrialSpec,
    embed: Callable[[Path], FileEmbedding],
    scorer: Scorer,
) -> Trials:
    """Embed every file once (``embed(path)``: :func:`voiceauth.cli.evaluate.embed_file`) and score every trial."""
    files, pairs = spec
    rows = [embed(f) for _, f in files]
    scores = calibrated_pair_scores(
        scorer,
        np.stack([r.embedding for r in rows]),
        [r.narrowband for r in rows],
        [r.speech_s for r in rows],
        pairs,
        telephone=np.stack([r.telephone if r.telephone is not None else r.embedding for r in rows]),
    )
    return Trials.build(scores, [files[i][0] for i, _ in pairs], [files[j][0] for _, j in pairs])
