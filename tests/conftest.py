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


@pytest.fixture(scope="session")
def sentences_file(raw_dir, tmp_path_factory) -> Path:
    """The corpus segmented as the segment stage does it (data/sentences.jsonl is a DVC output, not in git)."""
    from policytag.records import write_jsonl
    from policytag.segment import segment_files

    done, skipped = segment_files([raw_dir])
    assert not skipped
    path = tmp_path_factory.mktemp("corpus") / "sentences.jsonl"
    write_jsonl(path, [sentence for item in done for sentence in item.sentences])
    return path
