"""The ``ccpulse`` command as a deployment runs it: ``python -m streams.cli`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def ccpulse(
    *args: str,
    env: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
    timeout_s: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``ccpulse *args`` and capture its text output; a hang fails the caller (timeout).

    ``env``: the whole environment (default: this process's). ``state_dir``: this process's
    ``CCPULSE_*`` settings are dropped and ``CCPULSE_STATE_DIR`` points there, so a test's
    command sees only the settings the test gives it."""
    environment = dict(os.environ if env is None else env)
    if state_dir is not None:
        environment = {k: v for k, v in environment.items() if not k.startswith("CCPULSE_")}
        environment["CCPULSE_STATE_DIR"] = str(state_dir)
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "streams.cli", *args],
        env=environment, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def ccpulse_ok(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``ccpulse`` that must exit 0 (its output tail in the failure message otherwise)."""
    done = ccpulse(*args, **kwargs)  # type: ignore[arg-type]
    assert done.returncode == 0, (
        f"ccpulse {' '.join(args)} exited {done.returncode}: {done.stdout[-1500:]} {done.stderr[-1500:]}"
    )
    return done
