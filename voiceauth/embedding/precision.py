"""Choosing device and numeric precision for the embedding engine."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from voiceauth.errors import ConfigError

__all__ = ["cpu_has_bf16", "resolve_device", "resolve_precision"]


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 matrix units (Intel AMX or AVX512-BF16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is available; use 'cpu' or 'auto'")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    return device


def resolve_precision(precision: str, device: str) -> str:
    """Map 'auto' to the fastest exact-enough precision for the device; validate explicit choices."""
    if precision == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"precision {precision!r} is not supported; use 'auto', 'fp32', 'bf16' or 'fp16'")
    if precision == "fp16" and device == "cpu":
        raise ConfigError("precision 'fp16' is only supported on CUDA; on CPU use 'bf16' or 'fp32'")
    return precision
