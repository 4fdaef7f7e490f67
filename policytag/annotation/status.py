"""`policytag annotate status`: what the local session runs, and how far the annotation has come.

Whether the session's Label Studio and ML backend are up (by the process ids `annotate start` recorded and their
/health), then from the project: sentences left (tasks nobody has annotated), annotations per annotator and per
label, and Krippendorff's alpha per label on the sentences two or more annotators labelled
(policytag.annotation.agreement). Nothing is written: `annotate pull` is what brings annotations into data/annotations/.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from policytag.labels import LABEL_NAMES, NONE_CHOICE

from policytag.annotation import local_server, session as sessions
from policytag.annotation.local_server import StartError


def status(directory: Path, title: str, sentences_path: Path) -> int:
    session = sessions.read_session(directory)
    if session is None:
        raise StartError(f"{directory}: no session here; start one with `policytag annotate start`")
    lines = []
    up = {}
    for name, url in ((sessions.LABEL_STUDIO, session.url), (sessions.ML_BACKEND, session.ml_url)):
        pid, stale = sessions.recorded_pid(directory, name)
        if stale:
            lines.append(f"note: {stale}")
        if name == sessions.ML_BACKEND and not url:
            lines.append(f"{name:13} not used (no model)")
            continue
        up[name] = bool(url) and local_server.is_up(url)
        state = "up" if up[name] else ("not answering" if pid else "down")
        lines.append(f"{name:13} {state} at {url}" + (f" (process {pid})" if pid else ""))
    if up.get(sessions.LABEL_STUDIO):
        lines += _progress(session, title, sentences_path)
    else:
        lines.append("start it with `policytag annotate start`")
    print("\n".join(lines), flush=True)
    return 0


def _progress(session, title: str, sentences_path: Path) -> list[str]:
    from policytag.annotation.agreement import agreement
    from policytag.annotation.connection import connect, find_project, label_studio_errors, user_emails
    from policytag.annotation.pseudonyms import Pseudonyms, mapping_path
    from policytag.annotation.pull import export_project, normalise

    client = connect(session.url, session.token)
    with label_studio_errors(session.url):
        project = find_project(client, title)
        if project is None:
            return [f"no project titled {title!r} yet; `policytag annotate start` makes it"]
        project = client.projects.get(project.id)
        total, done = project.task_number or 0, project.num_tasks_with_annotations or 0
        lines = [f"project {title!r} (id {project.id}): {total} sentences, {total - done} left, {done} annotated"]
        if not done:
            return lines
        if not sentences_path.exists():
            return lines + [f"({sentences_path} is missing: no breakdown per annotator and label)"]
        from policytag.records import read_sentences

        export = export_project(client, project.id)
        # pull's pseudonyms, read only: a name status has not seen before is not written down here
        result = normalise(export, user_emails(client), read_sentences(sentences_path), project.id,
                           pseudonyms=Pseudonyms(mapping_path()))
    per_annotator = Counter(a.annotator for a in result.annotations)
    lines.append("done per annotator: " + ", ".join(f"{name} {n}" for name, n in sorted(per_annotator.items())))
    per_label = Counter(label for a in result.annotations for label in a.labels)
    per_label[NONE_CHOICE] = sum(not a.labels for a in result.annotations)
    lines.append("per label: " + ", ".join(f"{name} {per_label[name]}" for name in (*LABEL_NAMES, NONE_CHOICE)))
    metrics = agreement(result.annotations)
    if metrics["sentences_with_2plus_annotators"]:
        alphas = ", ".join(f"{name} {'n/a' if value is None else value}" for name, value in metrics["alpha"].items())
        lines.append(f"agreement on {metrics['sentences_with_2plus_annotators']} sentences with 2+ annotators: "
                     f"alpha {alphas}")
    else:
        lines.append("agreement: no sentence has two annotators yet")
    if result.problems:
        kinds = Counter(problem.kind for problem in result.problems)
        lines.append("not counted: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    return lines
