"""The ``voiceauth`` command line (typer). Each command family lives in its own module."""

from __future__ import annotations

import logging

import typer

from voiceauth.cli import calibrate as _calibrate
from voiceauth.cli import call as _call
from voiceauth.cli import demo as _demo
from voiceauth.cli import embed as _embed
from voiceauth.cli import evaluate as _evaluate
from voiceauth.cli import inspect as _inspect
from voiceauth.cli import models as _models
from voiceauth.cli import report as _report
from voiceauth.cli import service as _service
from voiceauth.cli import spoof as _spoof

__all__ = ["app", "main"]

app = typer.Typer(help="voiceauth: voice-biometrics authentication and IVR service", no_args_is_help=True)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


app.add_typer(_models.app, name="models", help="Fetch, verify and describe the pretrained models.")
_embed.register(app)
_demo.register(app)
_service.register(app)
_evaluate.register(app)
_calibrate.register(app)
app.add_typer(_report.app, name="report", help="Reports for security staff (KPIs).")
_spoof.register(app)
_call.register(app)
_inspect.register(app)


def main() -> None:
    app()
