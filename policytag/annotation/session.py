"""The local annotation session on disk: where `policytag annotate start` keeps Label Studio's data, the admin's
login and token, and the ids of the processes it started.

Everything lives in one data directory inside the project (default `.label-studio/`, git-ignored and dvc-ignored;
$POLICYTAG_LABEL_STUDIO_DIR or --data-dir moves it), readable by its owner only:

    session.json          address, admin e-mail, password and token, database, ML backend address, last push
    data/                 Label Studio's own data folder (SQLite database, uploads, secret key)
    home/                 the Label Studio process's home (its caches)
    label-studio.pid      "PID START" of each process start recorded (START: the process's start time, so that a
    serve-ml.pid          pid reused by another program is not mistaken for ours)
    label-studio.log, serve-ml.log

`connect()` (policytag.annotation.connection) finds the session here when LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY
are unset.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

DIR_VARIABLE = "POLICYTAG_LABEL_STUDIO_DIR"
DEFAULT_DIR = Path(".label-studio")
SESSION_FILE = "session.json"
LABEL_STUDIO = "label-studio"
ML_BACKEND = "serve-ml"


class SessionError(RuntimeError):
    """The session's files cannot be used; str(error) names the file and what to do."""


@dataclass
class Session:
    url: str
    email: str
    password: str
    token: str
    host: str = "127.0.0.1"
    port: int = 8080
    ml_port: int = 9090
    database: str = ""
    """postgresql://user:password@host:port/name, or "" for SQLite inside the data directory."""
    ml_url: str = ""
    pushed: str = ""
    """Fingerprint of the inputs of the last push (policytag.annotation.start): unchanged inputs need no new push."""


def session_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(DIR_VARIABLE) or DEFAULT_DIR)


def make_private_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def read_session(directory: Path) -> Session | None:
    path = directory / SESSION_FILE
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(Session)}
        return Session(**{key: item for key, item in value.items() if key in known})
    except (ValueError, TypeError) as error:
        raise SessionError(f"{path}: not a session file ({error}); move it away and run `policytag annotate start` "
                           "(a new admin is made; the Label Studio data in its folder is kept)") from None


def write_session(directory: Path, session: Session) -> None:
    """Written owner-only (0600) and atomically: the file holds the admin's password and token."""
    make_private_dir(directory)
    path = directory / SESSION_FILE
    temporary = path.with_name(path.name + ".tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(asdict(session), out, indent=2)
        out.write("\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def local_credentials(directory: str | Path | None = None) -> tuple[str, str, Path] | None:
    """(url, token, session file) of the local session, None when there is none."""
    directory = session_dir(directory)
    session = read_session(directory)
    if session is None or not session.url or not session.token:
        return None
    return session.url, session.token, directory / SESSION_FILE


# --- process ids -------------------------------------------------------------------------------------------------

def pid_file(directory: Path, name: str) -> Path:
    return directory / f"{name}.pid"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but not ours
        return True
    return True


def record_pid(directory: Path, name: str, pid: int) -> None:
    path = pid_file(directory, name)
    path.write_text(f"{pid} {_start_time(pid) or '-'}\n", encoding="utf-8")
    os.chmod(path, 0o600)


def recorded_pid(directory: Path, name: str) -> tuple[int | None, str | None]:
    """(pid, None) when the recorded process still runs; (None, why) for a stale file, which is removed;
    (None, None) when nothing is recorded."""
    path = pid_file(directory, name)
    if not path.exists():
        return None, None
    parts = path.read_text(encoding="utf-8", errors="replace").split()
    try:
        pid, started = int(parts[0]), parts[1] if len(parts) > 1 else "-"
    except (ValueError, IndexError):
        path.unlink()
        return None, f"{path} held no process id; removed it"
    if not _alive(pid):
        path.unlink()
        return None, f"{path} was stale (process {pid} is not running); removed it"
    now = _start_time(pid)
    if started != "-" and now is not None and now != started:
        path.unlink()
        return None, f"{path} was stale (process {pid} is another program now); removed it"
    return pid, None


def forget_pid(directory: Path, name: str) -> None:
    pid_file(directory, name).unlink(missing_ok=True)


def stop_process(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM to the process's group (the processes were started in a session of their own), SIGKILL after
    `timeout` seconds."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    kill = (lambda sig: os.killpg(pid, sig)) if group == pid else (lambda sig: os.kill(pid, sig))
    try:
        kill(signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid) or _zombie(pid):
            return
        time.sleep(0.1)
    try:
        kill(signal.SIGKILL)
    except ProcessLookupError:
        pass


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
