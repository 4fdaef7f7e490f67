"""Shared fixtures: where the repository and its corpus are."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def raw_dir(repo) -> Path:
    return repo / "data" / "raw"
