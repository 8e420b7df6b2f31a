"""The console script sets the OpenMP wait policy before torch loads, and leaves an explicit one alone."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = (
    "import os, sys; from unittest import mock; import voiceauth.entry as e;"
    " assert 'torch' not in sys.modules, 'torch loaded before the policy was set';"
    " app = mock.Mock(); sys.modules['voiceauth.cli'] = mock.Mock(app=app); e.main();"
    " assert app.called; print(os.environ['OMP_WAIT_POLICY'])"
)


def _run(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_console_script_defaults_openmp_threads_to_sleep() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _run(env) == "PASSIVE"


def test_an_explicit_openmp_wait_policy_wins() -> None:
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
    assert _run(env) == "ACTIVE"
