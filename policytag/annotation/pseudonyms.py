"""Annotator names as they go into git: pseudonyms, never a person's e-mail address or display name.

Label Studio knows its users by e-mail. `annotate pull` writes each annotation under a name: a name that already
reads as a pseudonym (lower-case letters, digits, ".", "_" and "-", no "@", such as "vi-a", "ooni-b",
"adjudicator", or "gold" for the users that push creates as NAME@policytag.invalid) is kept as it is; any other
identity (an e-mail address, a display name) gets a pseudonym, "annotator-N", from a mapping file kept outside git:
$POLICYTAG_PSEUDONYMS, else pseudonyms.json in the Label Studio session folder (policytag.annotation.session:
.label-studio/, git-ignored). The mapping is only ever added to, so a person keeps their pseudonym from pull to pull;
edit it by hand to give someone a chosen name (e.g. map a reviewer's e-mail to "adjudicator"). Without the file the
pseudonyms cannot be traced back to people, which is the point: it stays on the machine that runs Label Studio.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from policytag.records import atomic_writer

MAPPING_VARIABLE = "POLICYTAG_PSEUDONYMS"
MAPPING_FILE = "pseudonyms.json"
PSEUDONYM = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
"""What a name must look like to be written as it is."""
PREFIX = "annotator-"


def mapping_path() -> Path:
    from policytag.annotation.session import DEFAULT_DIR, DIR_VARIABLE

    explicit = os.environ.get(MAPPING_VARIABLE)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(DIR_VARIABLE) or DEFAULT_DIR) / MAPPING_FILE


def is_pseudonym(name: str) -> bool:
    return bool(PSEUDONYM.fullmatch(name))


class PseudonymError(ValueError):
    """The mapping file cannot be read or written; str(error) names it and what to do."""


class Pseudonyms:
    """Identity -> pseudonym, loaded from `path` (None: in memory only) and saved back with `save()`."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        self.mapping: dict[str, str] = {}
        self.changed = False
        if self.path is not None and self.path.exists():
            try:
                mapping = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                    raise ValueError("expected a JSON object of identity -> pseudonym")
            except (OSError, ValueError) as error:
                raise PseudonymError(f"{self.path}: cannot read the annotator pseudonyms ({error}); restore it from a "
                                     f"backup (a new file would rename every annotator)") from None
            self.mapping = mapping

    @staticmethod
    def key(identity: str) -> str:
        identity = " ".join(identity.split())
        return identity.lower() if "@" in identity else identity  # e-mail addresses ignore case

    def name(self, identity: str) -> str:
        """The name to write for `identity`: itself when it reads as a pseudonym, else its (new or kept) pseudonym."""
        if is_pseudonym(identity):
            return identity
        key = self.key(identity)
        if key not in self.mapping:
            taken = set(self.mapping.values())
            number = len(taken) + 1
            while f"{PREFIX}{number}" in taken:
                number += 1
            self.mapping[key] = f"{PREFIX}{number}"
            self.changed = True
        return self.mapping[key]

    def save(self) -> None:
        """Write the mapping (readable by its owner only) if it gained an identity."""
        if self.path is None or not self.changed:
            return
        try:
            with atomic_writer(self.path) as handle:
                json.dump(self.mapping, handle, ensure_ascii=False, indent=1, sort_keys=True)
                handle.write("\n")
            os.chmod(self.path, 0o600)
        except OSError as error:
            raise PseudonymError(f"{self.path}: cannot write the annotator pseudonyms ({error.strerror or error}); "
                                 f"set {MAPPING_VARIABLE} to a writable path outside git") from None
        self.changed = False
