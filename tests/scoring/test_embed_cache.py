"""The embedding cache shared by the accuracy benchmark and the cohort build."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voiceauth.embedding.fake import FakeEngine
from voiceauth.scoring.build import embed_cached, embed_pieces
from voiceauth.scoring.evalsets import Piece


def _pieces(n: int, seed: int = 0) -> list[Piece]:
    rng = np.random.default_rng(seed)
    return [Piece(f"p{i}", f"s{i % 2}", rng.normal(0, 0.1, 8000).astype(np.float32), 8000) for i in range(n)]


def test_embed_cached_embeds_only_what_is_missing(tmp_path: Path) -> None:
    engine = FakeEngine()

    def embed(pieces: list[Piece]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return embed_pieces(engine, pieces)

    pieces = _pieces(4)
    first = embed_cached(pieces, embed, tmp_path, "fake")
    calls = engine.calls
    assert calls > 0 and (tmp_path / "fake.npz").is_file()
    again = embed_cached(pieces[::-1], embed, tmp_path, "fake")
    assert engine.calls == calls  # all cached; rows follow the order asked for
    assert np.allclose(again[0], first[0][::-1], atol=1e-6)
    changed = [Piece("p0", "s0", pieces[0].samples * 0.5 + 0.01, 8000)]  # same key, other samples
    embed_cached(changed, embed, tmp_path, "fake")
    assert engine.calls > calls  # the sample hash is part of the key
    assert embed_cached(pieces, embed, None, "fake")[0].shape == (4, 192)  # no cache folder: plain embedding
