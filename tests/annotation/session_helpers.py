"""Helpers of the `policytag annotate start` tests (test_annotate_session.py, test_annotate_postgres.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SESSION_VARIABLES = ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD",
                     "POLICYTAG_LABEL_STUDIO_DIR", "POLICYTAG_LABEL_STUDIO_DATABASE")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def policytag(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`policytag ARGS` as a person runs it, from the repository root (where .venv-ls is), with none of the Label
    Studio variables of this shell unless `env` sets them."""
    environment = {name: value for name, value in os.environ.items() if name not in SESSION_VARIABLES}
    environment.update(env or {})
    return subprocess.run([str(Path(sys.executable).parent / "policytag"), *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file of a data directory (logs and process ids aside) with a hash of its content, to check that a
    failed command changed nothing."""
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*"))
            if path.is_file() and path.suffix not in (".log", ".pid")}


def system_program(name: str, package: str, *candidates: str) -> str:
    """The path of a program from the distribution's packages; skipped when missing, a failure under CI."""
    found = shutil.which(name) or next((c for c in candidates if Path(c).exists()), None)
    if not found:
        if in_ci():
            pytest.fail(f"{name} is not installed; .ci/run installs Debian's {package} package")
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return found
