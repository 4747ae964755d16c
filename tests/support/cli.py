"""The ``bastion`` command run as a user would: a subprocess on a data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def bastion(
    data_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m bastion ARGS --data-dir DATA_DIR`` with fast test hashing and a wide
    terminal; ``env`` adds variables (e.g. ``BASTION_AUDIT_CHECKPOINT_SINK``)."""
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "BASTION_ARGON2_PROFILE": "test", "COLUMNS": "200", **(env or {})},
        timeout=60,
        check=False,
    )


def installed(data_dir: Path) -> Path:
    """``data_dir`` with an installation (``bastion init``): every command but ``serve`` and
    ``init`` refuses a folder without one."""
    created = bastion(data_dir, "init")
    assert created.returncode == 0, created.stderr
    return data_dir
