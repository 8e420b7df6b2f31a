"""Regenerate the bundled samples from the shared FSDD corpus (run once; output is committed).

Each sample is a string of 7 spoken digits of one FSDD speaker (~3-4 s, 8 kHz PCM16), the kind of answer an IVR
hears for "say your account number". Strings ``a``/``b``/``c`` use disjoint recordings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
DIGITS = [4, 1, 7, 2, 9, 0, 5]


def main(fsdd: Path, out: Path) -> None:
    gap = np.zeros(int(0.12 * 8000), dtype=np.float32)
    for spk in SPEAKERS:
        for k, take in enumerate("abc"):
            parts = []
            for j, d in enumerate(DIGITS):
                wav, sr = sf.read(fsdd / f"{d}_{spk}_{k * 10 + j}.wav", dtype="float32")
                assert sr == 8000
                parts += [wav, gap]
            sf.write(out / f"{spk}_{take}.wav", np.concatenate(parts), 8000, subtype="PCM_16")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent.parent / "shared/data/fsdd", here)
