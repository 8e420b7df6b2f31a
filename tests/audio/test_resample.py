"""The streaming resampler gives torchaudio's whole-signal result for any chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from voiceauth.audio.resample import StreamResampler, resample


@pytest.mark.parametrize("orig", [8000, 16000, 44100, 48000])
def test_chunked_equals_torchaudio(orig: int) -> None:
    rng = np.random.default_rng(orig)
    x = (0.3 * rng.standard_normal(orig + 37)).astype(np.float32)
    ref = AF.resample(torch.from_numpy(x), orig, 16000).numpy()
    np.testing.assert_allclose(resample(x, orig), ref, atol=1e-5)
    r = StreamResampler(orig)
    parts, i = [], 0
    while i < x.size:
        k = int(rng.integers(1, 2000))
        parts.append(r.feed(x[i : i + k]))
        i += k
    parts.append(r.flush())
    out = np.concatenate(parts)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)
