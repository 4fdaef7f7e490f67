"""Label Studio and `policytag serve-ml` as background processes of a local session: their environments, the checks
made before starting them (port, database), starting them, and waiting until they answer.

Label Studio runs from its own virtual environment (.venv-ls, made here when missing, as `make setup-label-studio`
does). Its environment is built from a short allow-list, because Label Studio also reads unprefixed USERNAME,
PASSWORD, HOST, PORT ... when the prefixed variables are missing.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

LABEL_STUDIO_ENV = Path(".venv-ls")
LABEL_STUDIO_CONSTRAINTS = Path("constraints-label-studio.txt")
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
LOCAL_BACKENDS = {"LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false", "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false"}
"""Label Studio's checks against server-side request forgery, relaxed so that it may reach the ML backend on
127.0.0.1 (and the webhook it adds for it); set for a Label Studio that listens on loopback only, never elsewhere."""
STARTUP_SECONDS = 300


class StartError(RuntimeError):
    """Something could not be started; str(error) is one line that says what to do."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def label_studio_binary(env_dir: Path = LABEL_STUDIO_ENV) -> Path:
    return env_dir / "bin" / "label-studio"


def ensure_label_studio(env_dir: Path = LABEL_STUDIO_ENV, constraints: Path = LABEL_STUDIO_CONSTRAINTS,
                        progress=print) -> Path:
    """The label-studio program of `env_dir`, installed there first (pinned by `constraints`) when missing."""
    binary = label_studio_binary(env_dir)
    if binary.exists():
        return binary
    if not constraints.exists():
        raise StartError(f"{binary} is missing and {constraints} is not here to install it; run from the project "
                         "root, or `make setup-label-studio` there")
    progress(f"setting up Label Studio in {env_dir} (once; a minute or two) ...")
    started = time.perf_counter()
    venv.create(env_dir, with_pip=True, clear=env_dir.exists())
    python = str(env_dir / "bin" / "python")
    for command in ([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                    [python, "-m", "pip", "install", "--quiet", "-c", str(constraints), "label-studio"]):
        if subprocess.run(command, stdin=subprocess.DEVNULL).returncode != 0:
            raise StartError(f"installing Label Studio into {env_dir} failed (see pip's output above); fix it and "
                             "run again, or `make setup-label-studio`")
    (env_dir / ".installed").touch()
    progress(f"Label Studio set up in {time.perf_counter() - started:.0f} s")
    return binary


def check_port_free(host: str, port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no use
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StartError(f"cannot start {what} on {host}:{port}: the port is in use ({error.strerror}); "
                             f"stop what uses it or pass {option} N") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def database_environment(url: str) -> dict[str, str]:
    """Label Studio's settings for a PostgreSQL database given as postgresql://USER:PASSWORD@HOST:PORT/NAME."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StartError(f"--database {_hide_password(url)}: only postgresql://USER:PASSWORD@HOST:PORT/NAME is "
                         "supported (without --database, Label Studio uses SQLite in the data directory)")
    name = parts.path.lstrip("/")
    if not name or not parts.username:
        raise StartError(f"--database {_hide_password(url)}: give the user and the database name, as in "
                         "postgresql://USER:PASSWORD@HOST:5432/NAME")
    return {
        "LABEL_STUDIO_DJANGO_DB": "postgresql",
        "LABEL_STUDIO_POSTGRE_NAME": unquote(name),
        "LABEL_STUDIO_POSTGRE_USER": unquote(parts.username),
        "LABEL_STUDIO_POSTGRE_PASSWORD": unquote(parts.password or ""),
        "LABEL_STUDIO_POSTGRE_HOST": parts.hostname or "localhost",
        "LABEL_STUDIO_POSTGRE_PORT": str(parts.port or 5432),
    }


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def check_database_reachable(url: str) -> None:
    settings = database_environment(url)
    host, port = settings["LABEL_STUDIO_POSTGRE_HOST"], int(settings["LABEL_STUDIO_POSTGRE_PORT"])
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        raise StartError(f"cannot connect to the database {_hide_password(url)} ({error.strerror or error}); start "
                         "PostgreSQL there or fix --database") from None


def label_studio_environment(data_dir: Path, home: Path, email: str, password: str, token: str,
                             database: str = "", local_backends: bool = True) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update({
        "HOME": str(home.resolve()),
        "PYTHONUNBUFFERED": "1",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir.resolve()),
        "LABEL_STUDIO_USERNAME": email,
        "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_USER_TOKEN": token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # the session's token is made here, not by the server
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",  # others join through the organisation's invite link
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_SENTRY_DSN": "",
        "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",
        "LABEL_STUDIO_CI": "false",
        "LABEL_STUDIO_DEBUG": "false",
    })
    if database:
        env.update(database_environment(database))
    if local_backends:
        env.update(LOCAL_BACKENDS)
    return env


def spawn(command: list[str], env: dict[str, str] | None, log: Path) -> subprocess.Popen:
    """Start `command` in a process group of its own (so that stopping it stops its children), output to `log`."""
    with log.open("ab") as out:
        os.chmod(log, 0o600)
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def start_label_studio(binary: Path, host: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    return spawn([str(binary), "start", "--no-browser", "--internal-host", host, "--port", str(port)], env, log)


def start_ml_backend(model_dir: Path, host: str, port: int, log: Path) -> subprocess.Popen:
    """`policytag serve-ml` through this interpreter, so that it runs from the same environment as this command."""
    return spawn([sys.executable, "-m", "policytag.annotation.ml_backend", "--model", str(model_dir), "--host", host,
                  "--port", str(port)], {**os.environ, "PYTHONUNBUFFERED": "1"}, log)


def _last_lines(log: Path, count: int = 1, start: int = 0) -> str:
    try:
        text = log.read_bytes()[start:].decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _reason(log: Path, start: int) -> str:
    """The line of a crashed process's log that says why: the last exception line, else the last line."""
    try:
        lines = [line.strip() for line in log.read_bytes()[start:].decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b.*:", line) or " error: " in line]
    return (errors or [line for line in lines if line] or [""])[-1][:400]


def wait_until_up(process: subprocess.Popen, url: str, log: Path, what: str, log_start: int = 0,
                  timeout: float = STARTUP_SECONDS) -> None:
    """Wait until GET url/health answers 200; a process that exits or never answers is a StartError naming its log
    and the reason found there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"{what} exited with status {process.returncode} while starting: "
                             f"{_reason(log, log_start) or 'no output'} (log: {log})")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise StartError(f"{what} did not answer at {url} within {timeout:.0f} s; last line of its log {log}: "
                     f"{_last_lines(log, 1, log_start) or 'none'}")


def is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=3).status_code == 200
    except httpx.TransportError:
        return False
