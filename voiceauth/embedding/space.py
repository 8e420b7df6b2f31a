"""Which network made a telephone-band embedding: its *embedding space*.

Telephone-band embeddings (voiceprints, enrolment utterances, watchlist entries, the narrowband cohort) are made by
the released ECAPA or, with ``telephone_adapter`` on, by the telephone-adapted one (``models/telephone``). Embeddings
of two spaces are not comparable: scores between them are neither calibrated nor meaningful. Every stored
telephone-band embedding records its space, and one made in another space than the running engine's is never scored
(a voiceprint verifies as ``EXPIRED`` until re-enrolled). Full-band embeddings always come from the released
network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["RELEASED_SPACE", "configured_space", "row_space", "telephone_space"]

#: the released spkrec-ecapa-voxceleb network (also what every row stored before spaces were recorded was made by)
RELEASED_SPACE = "released"


def _adapter_space(adapter: Path | None) -> str:
    if adapter is None:
        return RELEASED_SPACE
    from voiceauth.embedding.telephone import adapter_digest

    return f"tel-{adapter_digest(Path(adapter))[:8]}"


def telephone_space(engine: object) -> str:
    """The space of ``engine``'s telephone-band embeddings: ``released``, or ``tel-<adapter sha256[:8]>``."""
    return _adapter_space(getattr(engine, "telephone_adapter", None))


def configured_space(settings: Any) -> str:
    """The space the engine built from ``settings`` will have (``telephone_adapter``), without loading a model."""
    from voiceauth.embedding.telephone import ADAPTER_DIR

    return _adapter_space(ADAPTER_DIR if settings.telephone_adapter else None)


def row_space(stored: str | None) -> str:
    """A stored row's space; NULL (rows from before migration 0006) is the released network."""
    return stored or RELEASED_SPACE
