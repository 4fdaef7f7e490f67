"""Talking to Label Studio: the client from the environment, errors in one line, the project and its annotators.

The server and the token come from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (a remote server), else from the local
session of `policytag annotate start` (policytag.annotation.session: its data directory, git-ignored, owner-only),
never from files in the repository.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

URL_VARIABLE = "LABEL_STUDIO_URL"
KEY_VARIABLE = "LABEL_STUDIO_API_KEY"
DEFAULT_TITLE = "policytag"
PAGE_SIZE = 1000
SYNTHETIC_DOMAIN = "@policytag.invalid"
"""Annotators of annotation files whose names are not e-mail addresses (e.g. "gold") become Label Studio users
named NAME@policytag.invalid (a reserved domain), and come back by their plain name."""


class LabelStudioError(RuntimeError):
    """Label Studio cannot be used; str(error) is one line that says what to do."""


def connect(url: str | None = None, api_key: str | None = None, timeout: float = 60.0) -> "LabelStudio":
    """A client for the server at `url` (default: $LABEL_STUDIO_URL, else the local session), with the token
    checked once."""
    from label_studio_sdk import LabelStudio

    url = url or os.environ.get(URL_VARIABLE)
    api_key = api_key or os.environ.get(KEY_VARIABLE)
    session_file = None
    if not url and not api_key:  # neither given: the local session of `policytag annotate start`, if any
        url, api_key, session_file = _local_session()
    if not url:
        raise LabelStudioError(f"{URL_VARIABLE} is not set; set it to the Label Studio address, "
                               "e.g. http://localhost:8080 (or start a local session: `policytag annotate start`)")
    if not api_key:
        raise LabelStudioError(f"{KEY_VARIABLE} is not set; set it to your access token "
                               "(Label Studio: Account & Settings)")
    client = LabelStudio(base_url=url.rstrip("/"), api_key=api_key, timeout=timeout, max_retries=0)
    try:
        with label_studio_errors(url):
            client.users.whoami()
    except LabelStudioError as error:
        if session_file is None:
            raise
        raise LabelStudioError(f"the local session's Label Studio ({session_file}) cannot be used: "
                               f"{str(error).split('; ')[0]}; start it with `policytag annotate start`, or set "
                               f"{URL_VARIABLE} and {KEY_VARIABLE} for another server") from None
    return client


def _local_session() -> tuple[str | None, str | None, object]:
    from policytag.annotation.session import SessionError, local_credentials

    try:
        found = local_credentials()
    except SessionError as error:
        raise LabelStudioError(str(error)) from None
    return found if found else (None, None, None)


def base_url(client: "LabelStudio") -> str:
    return client._client_wrapper.get_base_url()


@contextmanager
def label_studio_errors(url: str) -> Iterator[None]:
    """Turn the client's transport and HTTP errors into a LabelStudioError with one line of advice."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ApiError as error:
        if error.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {url} refused the token (HTTP {error.status_code}); set {KEY_VARIABLE} to a valid "
                "access token of a user of that server (Account & Settings)") from None
        raise LabelStudioError(f"Label Studio at {url} answered HTTP {error.status_code}: "
                               f"{_one_line(error.body)}") from None
    except httpx.TransportError as error:
        raise LabelStudioError(f"cannot reach Label Studio at {url} ({type(error).__name__}: {error}); "
                               f"start the server or fix {URL_VARIABLE}") from None


def _one_line(body) -> str:
    if isinstance(body, dict):
        body = body.get("detail") or body.get("validation_errors") or body
    return " ".join(str(body).split())[:300]


def find_project(client: "LabelStudio", title: str):
    """The project with exactly this title, None if there is none; several with one title is an error."""
    found = [project for project in client.projects.list(title=title, page_size=PAGE_SIZE) if project.title == title]
    if len(found) > 1:
        raise LabelStudioError(f"{len(found)} Label Studio projects are titled {title!r} "
                               f"(ids {', '.join(str(p.id) for p in found)}); rename all but one")
    return found[0] if found else None


def ensure_project(client: "LabelStudio", title: str, label_config: str, instructions: str,
                   annotators_per_task: int | None = None) -> int:
    """The id of the project titled `title`, created if missing. Its labeling config and instructions are made
    those of the repository; how many annotators each task gets is set at creation (1 unless given) and changed
    only when `annotators_per_task` is given, so a setting made in Label Studio's UI survives a push."""
    project = find_project(client, title)
    if project is None:
        return client.projects.create(
            title=title, label_config=label_config, expert_instruction=instructions, show_instruction=False,
            maximum_annotations=annotators_per_task or 1,
            description="Sentences of policytag's corpus, one task each; labels from the policytag schema.",
        ).id
    changes = {key: value for key, value in (("label_config", label_config), ("expert_instruction", instructions),
                                             ("maximum_annotations", annotators_per_task))
               if value is not None and getattr(project, key) != value}
    if changes:
        client.projects.update(project.id, **changes)
    return project.id


def list_tasks(client: "LabelStudio", project_id: int) -> list:
    """Every task of the project: id, data, predictions and annotators (the ids of the users who annotated it).
    Naming the fields makes the listing about five times faster than all of them."""
    return list(client.tasks.list(project=project_id, fields="all", include="id,data,predictions,annotators",
                                  page_size=PAGE_SIZE))


def annotator_email(annotator: str) -> str:
    return annotator if "@" in annotator else annotator + SYNTHETIC_DOMAIN


def annotator_name(email: str) -> str:
    return email[: -len(SYNTHETIC_DOMAIN)] if email.endswith(SYNTHETIC_DOMAIN) else email


def user_emails(client: "LabelStudio") -> dict[int, str]:
    """User id -> e-mail, for every user the token's organisation has."""
    return {user.id: user.email for user in client.users.list()}


def ensure_users(client: "LabelStudio", annotators: set[str]) -> dict[str, int]:
    """Annotator name -> Label Studio user id, creating (password-less) users for names it lacks."""
    by_email = {email: user_id for user_id, email in user_emails(client).items()}
    ids = {}
    for annotator in sorted(annotators):
        email = annotator_email(annotator)
        if email not in by_email:
            by_email[email] = client.users.create(username=email.split("@")[0], email=email).id
        ids[annotator] = by_email[email]
    return ids
