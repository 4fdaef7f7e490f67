"""`policytag serve-ml`: the classifier as a Label Studio ML backend, so that Label Studio asks it for predictions.

A small HTTP server on the standard library that speaks the protocol of Label Studio's ML backends (the routes of
label-studio-ml-backend's label_studio_ml/api.py, whose PyPI package is no longer maintained):

- GET /health and GET /: {"status": "UP", "model_class": "policytag", "model_version": ...}
- POST /setup: {"model_version": ...}; when the request carries the project's labeling config ("schema"), it is
  checked as /predict checks it, so that connecting the backend to a project it cannot serve fails at once;
- POST /predict: {"tasks": [...], "label_config": ..., "project": "ID.TIMESTAMP", "params": {...}} ->
  {"results": [one prediction per task, in task order]}; each prediction is one multi-label choices result for the
  Choices control of the request's labeling config (from_name/to_name/choice values taken from that config), the
  overall score (policytag.annotation.tasks.decision_confidence), the model version, and the per-label scores and
  thresholds in the result's `meta`;
- POST /webhook: 200 {} (Label Studio's events are logged; the backend does not train);
- GET /metrics: {}.

The classifier is loaded once, at start; all tasks of one request are scored in one predict_proba call. A labeling
config that does not fit the model (no multiple-choice Choices control with every label of the model and "none") is
an HTTP 400 whose message says what is missing, never a result Label Studio would reject; the message is also the
response's reason phrase, which Label Studio shows in its error. A task without text (or with invisible characters
only), or one the model fails on, gets, in its place in the results, an item with an "error" and no "result": Label
Studio skips it and stores the predictions of the others; one bad task never fails the batch. Lone surrogates in a
task's text are replaced by U+FFFD (and logged) before it reaches the model. A malformed request (body not JSON,
Content-Length not a byte count) is a 400.

This server has no authentication and is meant for a local machine (see docs/ml-backend.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from policytag.labels import LABEL_NAMES, NONE_CHOICE
from policytag.text import is_blank, replace_lone_surrogates

from policytag.annotation import tasks as task_payloads
from policytag.annotation.labeling_config import CONTROL

if TYPE_CHECKING:
    from policytag.model import Classifier

MODEL_CLASS = "policytag"
DEFAULT_MODEL = Path("models/classifier")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9090
MAX_BODY_BYTES = 64 * 1024 * 1024
TEXT_FIELD = "text"
"""The task data field scored: the sentence, as policytag.annotation.tasks.task_data writes it."""

log = logging.getLogger("policytag.serve_ml")


class BackendError(ValueError):
    """A request the backend cannot answer; str(error) says why and what to do. `status` is the HTTP status."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ChoicesTarget:
    """Where the model's decision goes in a labeling config: the Choices control, the object it labels, and the
    value a result stores for each choice (a Choice's `alias` when it has one, else its `value`)."""

    from_name: str
    to_name: str
    stored: dict[str, str]


def choices_target(label_config, labels: tuple[str, ...] = LABEL_NAMES) -> ChoicesTarget:
    """The Choices control of `label_config` that can hold the model's decisions: multiple choice, with a Choice for
    every one of `labels` and for "none". The one named CONTROL is preferred; otherwise exactly one must fit.
    Raises BackendError (400) saying what the config lacks."""
    if not isinstance(label_config, str) or not label_config.strip():
        raise BackendError("the request has no label_config; Label Studio sends the project's labeling config")
    return _choices_target(label_config, tuple(labels))


@lru_cache(maxsize=32)
def _choices_target(label_config: str, labels: tuple[str, ...]) -> ChoicesTarget:
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as error:
        raise BackendError(f"the labeling config is not valid XML ({error})") from None
    controls = [element for element in root.iter() if element.tag.lower() == "choices"]
    wanted = (*labels, NONE_CHOICE)
    fix = "use policytag's labeling config (policytag/annotation/labeling_config.py; `policytag annotate push` sets it)"
    if not controls:
        raise BackendError(f"the labeling config has no <Choices> control for the labels; {fix}")

    def lacking(control: ET.Element) -> list[str]:
        values = {choice.get("value") for choice in _choice_tags(control)}
        return [name for name in wanted if name not in values]

    named = [control for control in controls if control.get("name") == CONTROL]
    fitting = [control for control in controls if not lacking(control)]
    if named:
        control = named[0]
        missing = lacking(control)
        if missing:
            raise BackendError(f"<Choices name={CONTROL!r}> of the labeling config lacks the choice(s) "
                               f"{', '.join(missing)} that the model predicts; {fix}")
    elif len(fitting) == 1:
        control = fitting[0]
    elif fitting:
        raise BackendError("several <Choices> controls of the labeling config carry every label "
                           f"({', '.join(str(c.get('name')) for c in fitting)}); name the one for the model's "
                           f"labels {CONTROL!r}")
    else:
        closest = min(controls, key=lambda c: len(lacking(c)))
        raise BackendError(f"no <Choices> control of the labeling config has every label of the model and "
                           f"{NONE_CHOICE!r} (<Choices name={closest.get('name')!r}> lacks "
                           f"{', '.join(lacking(closest))}); {fix}")

    name, to_names = control.get("name"), [n.strip() for n in (control.get("toName") or "").split(",") if n.strip()]
    if not name or not to_names:
        raise BackendError("the <Choices> control for the labels needs a name and a toName attribute")
    if control.get("choice") != "multiple":
        raise BackendError(f"<Choices name={name!r}> is single-choice, but a sentence may carry several labels; "
                           'give it choice="multiple"')
    objects = {element.get("name") for element in root.iter() if element.get("value", "").startswith("$")}
    if to_names[0] not in objects:
        raise BackendError(f"<Choices name={name!r}> labels toName={to_names[0]!r}, which is no object tag of the "
                           "labeling config")
    stored = {}
    for choice in _choice_tags(control):
        value = choice.get("value")
        if value in wanted and value not in stored:
            stored[value] = choice.get("alias") or value
    return ChoicesTarget(name, to_names[0], stored)


def _choice_tags(control: ET.Element) -> list[ET.Element]:
    return [element for element in control.iter() if element.tag.lower() == "choice"]


class Backend:
    """The protocol, without HTTP: what each route answers for a request body (a parsed JSON object)."""

    def __init__(self, classifier: "Classifier"):
        if sorted(classifier.labels) != sorted(LABEL_NAMES):
            raise BackendError(f"the classifier's labels ({', '.join(classifier.labels)}) are not the schema's "
                               f"({', '.join(LABEL_NAMES)}); retrain it (`dvc repro train`)")
        self.classifier = classifier
        self.model_version = classifier.model_version
        self.thresholds = {label: float(t) for label, t in zip(classifier.labels, classifier.thresholds)}
        self._lock = threading.Lock()  # one forward pass at a time: predictable memory and CPU use

    def health(self) -> dict:
        return {"status": "UP", "model_class": MODEL_CLASS, "model_version": self.model_version}

    def setup(self, body: dict) -> dict:
        schema = body.get("schema")
        if schema:
            choices_target(schema)
        log.debug("setup for project %s: model version %s", body.get("project"), self.model_version)
        return {"model_version": self.model_version}

    def predict(self, body: dict) -> dict:
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise BackendError("the request's 'tasks' must be a list of tasks")
        target = choices_target(body.get("label_config"))
        texts, positions, problems = [], [], {}
        for position, task in enumerate(tasks):
            task_id = task.get("id") if isinstance(task, dict) else None
            text = _task_text(task)
            if text is None:
                problems[position] = (f"task {task_id}: no text to classify in its data.{TEXT_FIELD}; it is not a "
                                      "task of `policytag annotate push`")
                log.warning("%s; skipped", problems[position])
                continue
            text, replaced = replace_lone_surrogates(text)
            if replaced:
                log.warning("task %s: %d lone surrogate(s) in its text replaced with U+FFFD", task_id, replaced)
            texts.append(text)
            positions.append(position)
        predictions = {}
        for position, row in zip(positions, self._score(texts)):
            try:
                if isinstance(row, Exception):
                    raise row
                predictions[position] = self.prediction(row, target)
            except Exception as error:  # this task gets an error in its place; the others their predictions
                task = tasks[position]
                problems[position] = (f"task {task.get('id') if isinstance(task, dict) else None}: the model could "
                                      f"not score its text ({type(error).__name__}: {error})")
                log.warning("%s; skipped", problems[position])
        results = [predictions[position] if position in predictions
                   else {"error": problems[position], "model_version": self.model_version}
                   for position in range(len(tasks))]
        log.info("predicted %d task(s) of project %s (%d skipped)", len(predictions), body.get("project"),
                 len(problems))
        return {"results": results}

    def prediction(self, scores: Sequence[float], target: ChoicesTarget) -> dict:
        """One prediction in Label Studio's format, for one row of predict_proba's output."""
        by_label = {label: float(score) for label, score in zip(self.classifier.labels, scores)}
        prediction = task_payloads.prediction(by_label, self.thresholds, self.model_version)
        result = prediction["result"][0]
        result["from_name"], result["to_name"] = target.from_name, target.to_name
        result["value"]["choices"] = [target.stored[choice] for choice in result["value"]["choices"]]
        result["meta"] = {  # kept by Label Studio with the result; visible through its API and export
            "scores": {label: round(by_label[label], 4) for label in LABEL_NAMES},
            "thresholds": {label: round(self.thresholds[label], 4) for label in LABEL_NAMES},
        }
        return prediction

    def webhook(self, body: dict) -> dict:
        project = body.get("project")
        project = project.get("id") if isinstance(project, dict) else project
        about = next((f"{key} {body[key].get('id')}" for key in ("annotation", "task")
                      if isinstance(body.get(key), dict)), "")
        log.info("webhook %s from project %s%s", body.get("action"), project, f" ({about})" if about else "")
        return {}

    def _score(self, texts: list[str]) -> list:
        """A row of scores per text, in order, from one predict_proba call; if that call fails, each text is scored
        alone, and a text that fails alone gets its exception in its place."""
        if not texts:
            return []
        try:
            with self._lock:
                return list(self.classifier.predict_proba(texts))
        except Exception as error:
            if len(texts) == 1:
                return [error]
            log.warning("scoring %d texts together failed (%s: %s); scoring each alone", len(texts),
                        type(error).__name__, error)
        return [row for text in texts for row in self._score([text])]


def _task_text(task) -> str | None:
    data = task.get("data") if isinstance(task, dict) else None
    text = data.get(TEXT_FIELD) if isinstance(data, dict) else None
    return text if isinstance(text, str) and not is_blank(text) else None


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the server's Backend; every answer is JSON."""

    server: "BackendServer"
    server_version = "policytag-ml-backend"
    GET_ROUTES = {"/": "health", "/health": "health", "/metrics": "metrics"}
    POST_ROUTES = {"/setup": "setup", "/predict": "predict", "/webhook": "webhook"}

    def do_GET(self) -> None:
        route = self.GET_ROUTES.get(self.path.split("?", 1)[0].rstrip("/") or "/")
        if route is None:
            return self._error(BackendError(f"no route GET {self.path}", HTTPStatus.NOT_FOUND))
        self._answer({} if route == "metrics" else self.server.backend.health())

    def do_POST(self) -> None:
        route = self.POST_ROUTES.get(self.path.split("?", 1)[0].rstrip("/"))
        try:
            body = self._read_json()
            if route is None:
                raise BackendError(f"no route POST {self.path}", HTTPStatus.NOT_FOUND)
            self._answer(getattr(self.server.backend, route)(body))
        except BackendError as error:
            log.warning("POST %s: %s", self.path, error)
            self._error(error)
        except Exception as error:  # the server goes on; Label Studio sees a 500 with the reason
            log.exception("POST %s failed", self.path)
            self._error(BackendError(f"{type(error).__name__}: {error}", HTTPStatus.INTERNAL_SERVER_ERROR))

    def _read_json(self) -> dict:
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not re.fullmatch(r"[0-9]+", declared):
            raise BackendError(f"the Content-Length header {declared!r} is not a number of bytes; send the length of "
                               "the body in bytes")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise BackendError(f"request body over {MAX_BODY_BYTES} bytes", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError) as error:
            raise BackendError(f"the request body is not JSON ({error})") from None
        if not isinstance(body, dict):
            raise BackendError("the request body must be a JSON object")
        return body

    def _answer(self, value: dict, status: HTTPStatus = HTTPStatus.OK, reason: str | None = None) -> None:
        payload = json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")  # a lone surrogate: "?"
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, error: BackendError) -> None:
        message = " ".join(str(error).split())
        # Label Studio reports "<status> Client Error: <reason> for url: ...", so the reason phrase carries the why.
        reason = message.encode("latin-1", "replace").decode("latin-1")[:300]
        self._answer({"status": "ERROR", "error": message}, error.status, reason)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class BackendServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend: Backend):
        super().__init__(address, Handler)
        self.backend = backend

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(backend: Backend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> BackendServer:
    """A server bound to host:port (0: any free port) answering for `backend`; call serve_forever() on it."""
    return BackendServer((host, port), backend)


def load_backend(model_dir: str | Path, device: str | None = None) -> Backend:
    """The classifier of `model_dir`, loaded once, behind the protocol. Raises BackendError or ClassifierError."""
    from policytag.model import Classifier

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise BackendError(f"{model_dir}: no such model directory; train the classifier (`dvc repro train`, or "
                           "`dvc pull` for a trained one) or pass --model DIR")
    return Backend(Classifier.load(model_dir, device=device))


def add_subcommand(subparsers) -> argparse.ArgumentParser:
    """Add `serve-ml` to an argparse subparsers object (policytag's); it sets `run` to run(args) -> exit status."""
    parser = subparsers.add_parser(
        "serve-ml", help="serve the classifier to Label Studio as an ML backend (predictions on request)",
        description="Serve the classifier to Label Studio as an ML backend: Label Studio asks it for predictions "
                    "of its tasks. No authentication: for a local machine; see docs/ml-backend.md.")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, metavar="DIR",
                        help=f"classifier directory (default {DEFAULT_MODEL})")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--device", help="torch device for the model (default: cuda when available, else cpu)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"],
                        help="DEBUG also logs every request line")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the model, serve until interrupted (Ctrl-C or SIGTERM); 1 with one line on stderr if it cannot start."""
    from policytag.model import ClassifierError

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s policytag serve-ml %(levelname)s: %(message)s")
    try:
        backend = load_backend(args.model, args.device)
        server = make_server(backend, args.host, args.port)
    except (BackendError, ClassifierError) as error:
        print(f"policytag serve-ml: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"policytag serve-ml: error: cannot listen on {args.host}:{args.port} ({error.strerror or error}); "
              "pick another --port or stop what uses it", file=sys.stderr)
        return 1

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    log.info("model %s (%s) ready at %s; connect it to a Label Studio project as its ML backend "
             "(docs/ml-backend.md)", backend.model_version, args.model, server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policytag.annotation.ml_backend")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_subcommand(commands)
    args = parser.parse_args(["serve-ml", *(sys.argv[1:] if argv is None else argv)])
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
