"""What the stages record beside their models and metrics: the versions of the packages that made them and the
version (content hash) of a data directory; JSON files are written with policytag.records.write_json (re-exported
here for the stages)."""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Sequence

from policytag.records import write_json

__all__ = ["directory_hash", "package_versions", "write_json"]


def package_versions(distributions: Sequence[str]) -> dict[str, str]:
    """Installed versions; for an imported library, the version of the code actually running."""
    versions = {}
    for name in distributions:
        module = sys.modules.get(name.replace("-", "_"))
        try:
            versions[name] = getattr(module, "__version__", None) or metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def directory_hash(path: str | os.PathLike) -> str:
    """sha256 over the relative paths and contents of every file under `path`: the data version."""
    root, digest = Path(path), hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
