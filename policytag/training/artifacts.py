"""What the stages write beside their models and metrics: JSON files, the versions of the packages that made them,
and the version (content hash) of a data directory."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Sequence

from policytag.records import atomic_writer


def write_json(path: str | os.PathLike, value) -> None:
    """`value` as indented UTF-8 JSON with a final newline, written atomically (a reader never sees half a file)."""
    with atomic_writer(Path(path)) as handle:
        json.dump(value, handle, indent=1, ensure_ascii=False)
        handle.write("\n")


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
