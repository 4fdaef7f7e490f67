"""A real Label Studio for the annotation tests, started from the project's own .venv-ls.

The first start on an empty data folder migrates a database and takes about 40 s, so it happens once per test
session (label_studio_ready_data); each server a test asks for starts from a copy of that folder in a few seconds.
The admin user and its API token are made up at test time and passed through LABEL_STUDIO_* variables; the server's
environment is built from a short allow-list, because Label Studio also reads unprefixed USERNAME, PASSWORD, HOST,
PORT, CI ... when the prefixed variables are missing. Each server is stopped through its own process group.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from session_helpers import free_port, in_ci

REPO = Path(__file__).resolve().parents[2]
LABEL_STUDIO = REPO / ".venv-ls" / "bin" / "label-studio"
STARTUP_SECONDS = 240
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str
    token: str


@dataclass
class LabelStudioServer:
    url: str
    admin: Credentials
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process_group(self.process)


def server_environment(data_dir: Path, home: Path, admin: Credentials,
                       extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update({
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": admin.email,
        "LABEL_STUDIO_PASSWORD": admin.password,
        "LABEL_STUDIO_USER_TOKEN": admin.token,
        # Must hold when the data folder is first created, or the made-up token is not accepted.
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        # Sign-up only through an organisation's invite link, as for a real team.
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_CI": "false",
        "LABEL_STUDIO_DEBUG": "false",
    })
    env.update(extra_env or {})  # a test's own settings (e.g. test_ml_backend relaxes the local-address check)
    return env


def start_server(data_dir: Path, admin: Credentials, extra_env: dict[str, str] | None = None) -> LabelStudioServer:
    log = data_dir.with_name(data_dir.name + ".log")
    home = data_dir.with_name(data_dir.name + "-home")
    home.mkdir(exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(free_port())],
            env=server_environment(data_dir, home, admin, extra_env), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    server = LabelStudioServer(url="", admin=admin, process=process, log=log)
    try:
        server.url = wait_until_ready(process, log)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_ready(process: subprocess.Popen, log: Path) -> str:
    """The server's address once /health answers; Label Studio moves to another port if the one given is taken, so
    the address is read from the server's own log line."""
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Label Studio exited with status {process.returncode}:\n{tail(log)}")
        if url is None:
            found = re.search(r"Starting development server at (http://[\d.]+:\d+)/", log.read_text(errors="replace"))
            url = found.group(1) if found else None
        if url is not None:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"Label Studio did not answer within {STARTUP_SECONDS} s:\n{tail(log)}")


def stop_process_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def label_studio_binary() -> Path:
    if not LABEL_STUDIO.exists():
        message = f"{LABEL_STUDIO.relative_to(REPO)} is missing; create it with `make setup-label-studio`"
        if in_ci():
            pytest.fail(message + " (required under CI)")
        pytest.skip(message)
    return LABEL_STUDIO


@pytest.fixture(scope="session")
def label_studio_ready_data(label_studio_binary, tmp_path_factory) -> tuple[Path, Credentials]:
    """A data folder with the database migrated and the admin user created, made by one first start."""
    admin = Credentials(email="admin@example.com", password=secrets.token_urlsafe(16), token=secrets.token_hex(20))
    data_dir = tmp_path_factory.mktemp("label-studio") / "ready"
    data_dir.mkdir()
    start_server(data_dir, admin).stop()
    return data_dir, admin


@pytest.fixture(scope="module")
def label_studio(label_studio_ready_data, tmp_path_factory) -> LabelStudioServer:
    """A running Label Studio for one test module, from a copy of the ready data folder (tests use their own
    project titles)."""
    ready, admin = label_studio_ready_data
    data_dir = tmp_path_factory.mktemp("label-studio") / "data"
    shutil.copytree(ready, data_dir)
    server = start_server(data_dir, admin)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def label_studio_factory(label_studio_ready_data, tmp_path_factory):
    """start(extra_env) -> a running Label Studio with these settings added to its environment, from a copy of the
    ready data folder; every server started is stopped at the end of the test module."""
    ready, admin = label_studio_ready_data
    servers: list[LabelStudioServer] = []

    def start(extra_env: dict[str, str] | None = None) -> LabelStudioServer:
        data_dir = tmp_path_factory.mktemp("label-studio") / "data"
        shutil.copytree(ready, data_dir)
        servers.append(start_server(data_dir, admin, extra_env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
