"""The one Settings object of voiceauth.

Read from environment variables prefixed ``VOICEAUTH_`` (and an optional ``.env``). Components never read
the environment themselves: they take what they need from a :class:`Settings` in their constructor.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Precision", "Settings", "get_settings"]

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]


def _default_home() -> Path:
    return Path.home() / ".cache" / "voiceauth"


class Settings(BaseSettings):
    """All tunables of the service, with embedded defaults that work offline on one machine."""

    model_config = SettingsConfigDict(env_prefix="VOICEAUTH_", env_file=".env", extra="ignore")

    # -- where things live -------------------------------------------------------------------------
    home: Path = Field(default_factory=_default_home, description="Root for fetched models and caches.")
    model_dir: Path | None = Field(
        default=None,
        description="An existing directory holding the five spkrec-ecapa-voxceleb files; tried first.",
    )

    # -- model fetch ---------------------------------------------------------------------------------
    hub_timeout_s: float = Field(default=4.0, gt=0, description="Timeout for the model hub probe.")
    offline: bool = Field(default=False, description="Skip the model hub entirely.")

    # -- embedding engine ------------------------------------------------------------------------------
    precision: Precision = "auto"
    device: Device = "auto"
    num_threads: int | None = Field(default=None, ge=1, description="torch intra-op threads; None = torch's.")

    @property
    def model_cache_dir(self) -> Path:
        """Where fetched model files are stored (``$home/models/spkrec-ecapa-voxceleb``)."""
        return self.home / "models" / "spkrec-ecapa-voxceleb"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, built once per process (for the CLI and the app's edges)."""
    return Settings()
