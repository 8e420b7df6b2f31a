"""The ``voiceauth`` console script: process-level defaults that must be set before torch loads, then the CLI.

``OMP_WAIT_POLICY=PASSIVE`` (unless the environment says otherwise): OpenMP threads sleep between operations
instead of spin-waiting. Spinning took the cores other calls and processes needed: seconds-long embedding tails on a
shared machine, and on a quiet one 50 streaming calls went from p99 219 ms / 0.143 CPU s per call to 166 ms /
0.122 s (``benchmarks/results/streaming-omp-wait-policy.md``). OpenMP reads it once, when torch loads, so it is set
here, before :mod:`voiceauth.cli` (which imports torch) is imported. With it, ``backend=auto`` prefers
``onnx-int8`` where ONNX Runtime is installed (:func:`voiceauth.embedding.backends.resolve_backend`).
"""

from __future__ import annotations

import os

__all__ = ["main"]


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from voiceauth.cli import app

    app()
