"""`policytag annotate start|stop`: from a clone to a Label Studio session ready in the browser, in one command.

`start` sets up what is missing (Label Studio's environment, the sentences, a pulled model when there is one),
starts Label Studio on 127.0.0.1 with its data inside the project (policytag.annotation.session), makes the admin
account on the first start, creates or updates the project, pushes the sentences not yet labelled in `suggest` order
with the model's predictions, starts `serve-ml` and connects it, and prints the address, the login and what to do
next. A later start reuses everything and pushes again only when its inputs changed. `stop` stops the processes `start`
recorded. Bad input (a port in use, a stale process-id file, a missing or broken model, a Label Studio that does not
come up, a database that refuses the connection) is one line naming what to do; the data directory is kept.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from policytag.annotation import local_server, session as sessions
from policytag.annotation.connection import DEFAULT_TITLE, KEY_VARIABLE, URL_VARIABLE, LabelStudioError
from policytag.annotation.local_server import StartError
from policytag.annotation.session import LABEL_STUDIO, ML_BACKEND, Session, SessionError

SENTENCES = Path("data/sentences.jsonl")
RAW = Path("data/raw")
ANNOTATIONS = Path("data/annotations")
MODEL = Path("models/classifier")
ADMIN_VARIABLES = ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD")
DATABASE_VARIABLE = "POLICYTAG_LABEL_STUDIO_DATABASE"
BACKEND_TITLE = "policytag serve-ml"


def add_subcommands(subparsers) -> None:
    start = subparsers.add_parser(
        "start", help="start a local Label Studio session: server, project, tasks, predictions, ML backend",
        description="Start Label Studio with its data in the project (default .label-studio/), make the admin "
                    "account on first start, push the unlabelled sentences in suggest order with the model's "
                    "predictions, start and connect `serve-ml`, and print the address and login.")
    _data_dir_option(start)
    start.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    start.add_argument("--allow-remote", action="store_true",
                       help="allow --host to be other than loopback (others on the network can then reach it; "
                            "the ML backend is not connected live)")
    start.add_argument("--port", type=int, help="Label Studio's port (default 8080, or the session's)")
    start.add_argument("--ml-port", type=int, help="serve-ml's port (default 9090, or the session's)")
    start.add_argument("--database", default=os.environ.get(DATABASE_VARIABLE),
                       help="postgresql://USER:PASSWORD@HOST:PORT/NAME for a team's shared database "
                            f"(default ${DATABASE_VARIABLE}, else SQLite in the data directory)")
    start.add_argument("--model", type=Path, help=f"classifier directory (default {MODEL}, when there is one)")
    start.add_argument("--no-model", action="store_true", help="no predictions and no ML backend")
    start.add_argument("--sentences", type=Path, default=SENTENCES, help=f"sentences file (default {SENTENCES})")
    start.add_argument("--raw", type=Path, default=RAW, help=f"article folder (default {RAW})")
    start.add_argument("--annotations", type=Path, default=ANNOTATIONS,
                       help=f"annotation folder: sentences labelled there are not pushed (default {ANNOTATIONS})")
    start.add_argument("--project", default=DEFAULT_TITLE, help=f"project title (default {DEFAULT_TITLE})")
    start.add_argument("--limit", type=int, help="push at most this many sentences (the most informative)")
    start.add_argument("--annotators-per-task", type=int, metavar="N",
                       help="how many annotators each task gets (2+ to measure agreement)")
    start.add_argument("--label-studio-env", type=Path, default=local_server.LABEL_STUDIO_ENV,
                       help=f"Label Studio's virtual environment, made when missing "
                            f"(default {local_server.LABEL_STUDIO_ENV})")
    start.set_defaults(run=main_start)

    stop = subparsers.add_parser("stop", help="stop what `annotate start` started",
                                 description="Stop Label Studio and serve-ml by the process ids `start` recorded.")
    _data_dir_option(stop)
    stop.set_defaults(run=main_stop)

    status = subparsers.add_parser(
        "status", help="sentences left, done per annotator and label, agreement, what is up",
        description="Whether the session's Label Studio and ML backend are up; the project's sentences left, "
                    "annotations per annotator and per label, and Krippendorff's alpha so far.")
    _data_dir_option(status)
    status.add_argument("--project", default=DEFAULT_TITLE, help=f"project title (default {DEFAULT_TITLE})")
    status.add_argument("--sentences", type=Path, default=SENTENCES, help=f"sentences file (default {SENTENCES})")
    status.set_defaults(run=main_status)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=sessions.session_dir(),
                        help=f"the session's data directory (default ${sessions.DIR_VARIABLE} or "
                             f"{sessions.DEFAULT_DIR})")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(command: str, job) -> int:
    try:
        return job()
    except (StartError, SessionError, LabelStudioError, ValueError, OSError) as error:
        _say(f"policytag annotate {command}: error: {error}")
        return 1


# --- start -------------------------------------------------------------------------------------------------------

def main_start(args: argparse.Namespace) -> int:
    return _run("start", lambda: start(args))


def start(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    directory = args.data_dir
    if not local_server.is_loopback(args.host):
        if not args.allow_remote:
            raise StartError(f"--host {args.host} is not a loopback address: Label Studio would be reachable from "
                             "the network; use 127.0.0.1, or add --allow-remote for a shared server")
        _say(f"warning: Label Studio will listen on {args.host}, reachable from the network; its protections "
             "against server-side request forgery stay on, so the ML backend is not connected live (predictions "
             "are attached to the tasks by push)")
    binary = local_server.ensure_label_studio(args.label_studio_env, progress=_say)
    session = sessions.read_session(directory)
    first = session is None
    database = args.database if args.database is not None else (session.database if session else "")
    if database:
        local_server.database_environment(database)  # checked before anything starts
    model = _model_dir(args)
    sentences = _sentences(args.sentences, args.raw)

    ls_pid, stale = sessions.recorded_pid(directory, LABEL_STUDIO) if directory.exists() else (None, None)
    ml_pid, ml_stale = sessions.recorded_pid(directory, ML_BACKEND) if directory.exists() else (None, None)
    for message in (stale, ml_stale):
        if message:
            _say(f"note: {message}")
    port = args.port or (session.port if session else 8080)
    ml_port = args.ml_port or (session.ml_port if session else 9090)
    if session and ls_pid and (args.port and args.port != session.port or args.host != session.host):
        raise StartError(f"Label Studio of this session already runs at {session.url} (process {ls_pid}); "
                         "`policytag annotate stop` first to move it")
    if ls_pid is None:
        local_server.check_port_free(args.host, port, "Label Studio", "--port")
    if model and ml_pid is None:
        local_server.check_port_free("127.0.0.1", ml_port, "the ML backend (serve-ml)", "--ml-port")
    if database and ls_pid is None:
        local_server.check_database_reachable(database)

    if first:
        session = _new_session()
    session.host, session.port, session.ml_port, session.database = args.host, port, ml_port, database
    session.url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{port}"
    session.ml_url = f"http://127.0.0.1:{ml_port}" if model else ""
    sessions.make_private_dir(directory)
    sessions.write_session(directory, session)  # before Label Studio starts: it makes the account from it

    unchanged = _fingerprint(args, model) == session.pushed
    started: list[str] = []
    ml = None

    def start_backend():
        process = local_server.start_ml_backend(model, "127.0.0.1", ml_port, directory / "serve-ml.log")
        sessions.record_pid(directory, ML_BACKEND, process.pid)
        started.append(ML_BACKEND)
        return process

    def wait_for_backend() -> None:
        if ml is not None:
            local_server.wait_until_up(ml, session.ml_url, directory / "serve-ml.log", "the ML backend (serve-ml)")

    try:
        if model and ml_pid is None and not unchanged:  # loads while Label Studio starts, for the push to come
            ml = start_backend()
        if ls_pid is None:
            _say(f"starting Label Studio at {session.url}" + (" (first start of this session: about a minute when "
                                                              "the database is new)" if first else ""))
            log = directory / "label-studio.log"
            offset = log.stat().st_size if log.exists() else 0
            data, home = (sessions.make_private_dir(directory / name) for name in ("data", "home"))
            env = local_server.label_studio_environment(data, home, session.email, session.password, session.token,
                                                        database, local_backends=local_server.is_loopback(args.host))
            process = local_server.start_label_studio(binary, args.host, port, env, log)
            sessions.record_pid(directory, LABEL_STUDIO, process.pid)
            started.append(LABEL_STUDIO)
        plan = None if unchanged else _plan_push(args, sentences, model)
        if ls_pid is None:
            local_server.wait_until_up(process, session.url, log, "Label Studio", offset)
        elif not local_server.is_up(session.url):
            raise StartError(f"Label Studio (process {ls_pid}) runs but does not answer at {session.url}; "
                             f"`policytag annotate stop`, then start again (log: {directory / 'label-studio.log'})")
        if model and ml_pid is None and ml is None:  # a later start: Label Studio first, the model after it
            ml = start_backend()
        client = _connect(session, directory)
        project_id = _update_project(client, session, directory, args, sentences, model, plan)
        if model and local_server.is_loopback(args.host):
            _connect_backend(client, project_id, session.ml_url, wait_for_backend)
        if not unchanged:
            wait_for_backend()
    except BaseException:
        for name in started:  # what this call started goes; the data directory stays as it is
            pid, _ = sessions.recorded_pid(directory, name)
            if pid:
                sessions.stop_process(pid)
            sessions.forget_pid(directory, name)
        raise
    _print_ready(session, directory, first, model, args, time.perf_counter() - began)
    return 0


def _new_session() -> Session:
    email, password = (os.environ.get(name) for name in ADMIN_VARIABLES)
    if bool(email) != bool(password):
        raise StartError("set both LABEL_STUDIO_USERNAME (an e-mail) and LABEL_STUDIO_PASSWORD for the admin "
                         "account, or neither (one is then made up and shown once)")
    if email and "@" not in email:
        raise StartError(f"LABEL_STUDIO_USERNAME={email!r} is not an e-mail address; Label Studio logs in by e-mail")
    user = "".join(c for c in getpass.getuser().lower() if c.isalnum() or c in "._-") or "annotator"
    return Session(url="", email=email or f"{user}@policytag.invalid", password=password or
                   secrets.token_urlsafe(12), token=secrets.token_hex(20))


def _model_dir(args: argparse.Namespace) -> Path | None:
    """The classifier to use: --model (which must be there), else models/classifier when it is there or can be
    pulled with DVC, else None (tasks without predictions)."""
    if args.no_model:
        return None
    explicit = args.model is not None
    model = args.model or MODEL
    if not model.exists() and not explicit:
        _pull_model(model)
    if not model.exists():
        if explicit:
            raise StartError(f"{model}: no such model directory; train the classifier (`dvc repro train`), pull it "
                             "(`dvc pull train`), or start without one (--no-model)")
        _say(f"note: no classifier in {model} (train it with `dvc repro train`, or `dvc pull train`): tasks get no "
             "predictions and no ML backend is started")
        return None
    missing = [name for name in ("config.json", "thresholds.json") if not (model / name).is_file()]
    if not any(model.glob("*.safetensors")):
        missing.append("model.safetensors")
    if missing:
        raise StartError(f"{model}: not a classifier directory ({', '.join(missing)} missing); retrain it "
                         "(`dvc repro train`), `dvc pull train`, pass --model DIR, or start with --no-model")
    return model


def _pull_model(model: Path) -> None:
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    if not Path("dvc.yaml").exists() or not Path(dvc).exists():
        return
    _say(f"{model} is missing; trying `dvc pull train` ...")
    try:
        subprocess.run([dvc, "pull", "--quiet", "train"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300, env=_with_venv_path())
    except (OSError, subprocess.TimeoutExpired):
        pass


def _with_venv_path() -> dict[str, str]:
    """This environment's programs first on the PATH: DVC stages call `policytag`."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def _sentences(path: Path, raw: Path):
    from policytag.records import read_sentences

    if not path.exists() and path == SENTENCES and Path("dvc.yaml").exists():
        _say(f"{path} is missing; segmenting the articles (`dvc repro segment`) ...")
        dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
        done = subprocess.run([dvc, "repro", "--quiet", "segment"], stdin=subprocess.DEVNULL, env=_with_venv_path(),
                              capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise StartError(f"`dvc repro segment` failed ({last}); run it yourself to see why")
    if not path.exists():
        raise StartError(f"{path}: no such sentences file; run `dvc repro segment` (or pass --sentences FILE)")
    return read_sentences(path)


def _connect(session: Session, directory: Path):
    from policytag.annotation.connection import connect

    try:
        return connect(session.url, session.token)
    except LabelStudioError as error:
        if "refused the token" not in str(error):
            raise
        raise StartError(f"Label Studio at {session.url} refused the token of {directory / sessions.SESSION_FILE}: "
                         f"its account {session.email} was made before this session (a kept or shared database); "
                         "put that account's e-mail, password and token (Account & Settings) in that file") from None


def _fingerprint(args: argparse.Namespace, model: Path | None) -> str:
    """What a push depends on: the inputs' sizes and times, the model's files, the labeling config."""
    from policytag.annotation.labeling_config import instructions_html, labeling_config

    digest = hashlib.sha256()
    paths = [args.sentences, *sorted(args.annotations.glob("*.jsonl"))] if args.annotations.is_dir() else [
        args.sentences]
    if model:
        paths += [model / "config.json", model / "thresholds.json", *sorted(model.glob("*.safetensors"))]
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update(f"{args.project}|{args.limit}|{args.annotators_per_task}|{args.raw}".encode())
    digest.update((labeling_config() + instructions_html()).encode())
    return digest.hexdigest()[:32]


@dataclass
class PushPlan:
    """What a push sends: the sentences in order, their predictions, and the fingerprint of its inputs."""

    fingerprint: str
    sentences: list
    predictions: dict | None = None
    thresholds: dict | float = 0.5
    model_version: str = ""


def _plan_push(args, sentences, model: Path | None) -> PushPlan:
    """The unlabelled sentences, in suggest order with the model's scores when there is a model. Runs while Label
    Studio starts: ranking with the classifier is most of a first start's own work."""
    annotated = _annotated(args.annotations)
    plan = PushPlan(_fingerprint(args, model), [s for s in sentences if s.id not in annotated])
    if model and plan.sentences:
        from policytag.model import Classifier, ClassifierError

        from policytag.annotation.suggest import suggest

        _say(f"ranking {len(plan.sentences)} unlabelled sentences with {model} (suggest order) ...")
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # a core left for Label Studio, starting meanwhile
        try:
            classifier = Classifier.load(model, device="cpu")
            queue = suggest(sentences, classifier, args.annotations, limit=args.limit)
        except ClassifierError as error:
            raise StartError(f"{error} (or start with --no-model)") from None
        finally:
            torch.set_num_threads(threads)
        by_id = {s.id: s for s in sentences}
        plan.sentences = [by_id[item.sentence_id] for item in queue]
        plan.predictions = {item.sentence_id: item.scores for item in queue}
        plan.thresholds = dict(zip(classifier.labels, map(float, classifier.thresholds)))
        plan.model_version = classifier.model_version
    elif args.limit is not None:
        plan.sentences = plan.sentences[:args.limit]
    return plan


def _update_project(client, session: Session, directory: Path, args, sentences, model: Path | None,
                    plan: PushPlan | None) -> int:
    """Create or update the project and push `plan` (made now when none was made ahead: the inputs had not
    changed, but the project is missing)."""
    from policytag.annotation.connection import find_project, label_studio_errors
    from policytag.annotation.push import push, read_articles

    with label_studio_errors(session.url):
        project = find_project(client, args.project)
    if project is not None and plan is None:
        _say(f"project {args.project!r} is up to date (nothing changed since the last push)")
        return project.id
    plan = plan or _plan_push(args, sentences, model)
    if not plan.sentences:
        _say(f"every sentence of {args.sentences} is labelled in {args.annotations}: nothing new to push")
    result = push(client, plan.sentences, read_articles(args.raw), title=args.project, predictions=plan.predictions,
                  thresholds=plan.thresholds, model_version=plan.model_version,
                  annotators_per_task=args.annotators_per_task, progress=_say)
    _say(f"push: {result.summary()}")
    session.pushed = plan.fingerprint
    sessions.write_session(directory, session)
    return result.project_id


def _annotated(folder: Path) -> set[str]:
    from policytag.annotations import read_annotation_dir

    return {a.sentence_id for a in read_annotation_dir(folder)} if folder.is_dir() else set()


def _connect_backend(client, project_id: int, url: str, wait_for_backend) -> None:
    """Connect the backend at `url` to the project unless it is connected already (Label Studio checks a new
    backend's /health and /setup, so `wait_for_backend` is called first)."""
    from policytag.annotation.connection import label_studio_errors

    with label_studio_errors(str(client._client_wrapper.get_base_url())):
        backends = list(client.ml.list(project=project_id))
        if any(backend.url == url for backend in backends):
            return
        wait_for_backend()
        ours = [backend for backend in backends if backend.title == BACKEND_TITLE]
        if ours:
            client.ml.update(ours[0].id, url=url)
        else:
            client.ml.create(url=url, project=project_id, title=BACKEND_TITLE, is_interactive=False)
    _say(f"ML backend {url} connected to the project")


def _print_ready(session: Session, directory: Path, first: bool, model: Path | None, args, seconds: float) -> None:
    shown = first and not os.environ.get("LABEL_STUDIO_PASSWORD")
    password = (f"password {session.password}   (shown once; kept in {directory / sessions.SESSION_FILE}, "
                "readable by you only)" if shown else
                f"password: yours (kept in {directory / sessions.SESSION_FILE}, readable by you only)")
    lines = [
        f"Label Studio is ready at {session.url} ({'first start' if first else 'started'} in {seconds:.0f} s)",
        f"  log in:   {session.email}",
        f"            {password}",
        f"  project:  {args.project}" + (f"; live predictions from {model} at {session.ml_url}" if model else
                                          "; no model: tasks without predictions")
        + ("" if not model or local_server.is_up(session.ml_url) else " (loading the model; `annotate status`)"),
        "next: open the address in a browser, log in, open the project and press 'Label All Tasks';",
        "      `policytag annotate pull` brings the annotations into data/annotations/ (no variables to set);",
        "      `policytag annotate status` shows the progress; `policytag annotate stop` stops the servers.",
    ]
    remote = os.environ.get(URL_VARIABLE)
    if remote and remote.rstrip("/") != session.url:
        lines.append(f"note: {URL_VARIABLE}={remote} is set, so push and pull use that server, not this session; "
                     f"unset {URL_VARIABLE} and {KEY_VARIABLE} to use this one")
    print("\n".join(lines), flush=True)


# --- stop and status ---------------------------------------------------------------------------------------------

def main_stop(args: argparse.Namespace) -> int:
    return _run("stop", lambda: stop(args.data_dir))


def stop(directory: Path) -> int:
    if not directory.exists():
        raise StartError(f"{directory}: no session here; nothing to stop")
    stopped = []
    for name in (ML_BACKEND, LABEL_STUDIO):
        pid, stale = sessions.recorded_pid(directory, name)
        if stale:
            _say(f"note: {stale}")
        if pid:
            sessions.stop_process(pid)
            stopped.append(f"{name} (process {pid})")
        sessions.forget_pid(directory, name)
    _say(f"policytag annotate stop: {'stopped ' + ', '.join(stopped) if stopped else 'nothing was running'}; "
         f"the data in {directory} is kept")
    return 0


def main_status(args: argparse.Namespace) -> int:
    from policytag.annotation.status import status

    return _run("status", lambda: status(args.data_dir, args.project, args.sentences))
