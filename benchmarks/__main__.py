"""Entry point: ``python -m benchmarks ...`` (see :mod:`benchmarks.cli`)."""

from __future__ import annotations

from benchmarks.cli import app

if __name__ == "__main__":
    app()
