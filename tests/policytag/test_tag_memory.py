"""Tagging streams its input: peak memory does not grow with the size of the input."""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CHILD = """
import resource, sys
from policytag.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def write_input(path: Path, megabytes: int, sentences: list[str]) -> int:
    """A JSON Lines file of articles made of corpus sentences, about `megabytes` long; returns its size."""
    with path.open("w", encoding="utf-8") as handle:
        number = 0
        while handle.tell() < megabytes * 1_000_000:
            text = " ".join(sentences[(number + i) % len(sentences)] for i in range(40))
            handle.write(json.dumps({"id": f"a{number}", "text": text, "feed": "synthetic"}) + "\n")
            number += 1
    return path.stat().st_size


def peak_rss_mb(input_path: Path, out: Path, model: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", CHILD, "tag", str(input_path), "--out", str(out), "--model",
                             str(model), "--precision", "fp32", "--no-progress"],
                            capture_output=True, text=True, env=env, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_input(tiny_classifier, sentences_file, tmp_path):
    sentences = [json.loads(line)["text"] for line in sentences_file.read_text(encoding="utf-8").splitlines()]
    small = write_input(tmp_path / "small.jsonl", 1, sentences)
    large = write_input(tmp_path / "large.jsonl", 6, sentences)
    small_peak = peak_rss_mb(tmp_path / "small.jsonl", tmp_path / "small-out.jsonl", tiny_classifier)
    large_peak = peak_rss_mb(tmp_path / "large.jsonl", tmp_path / "large-out.jsonl", tiny_classifier)
    print(f"input {small / 1e6:.1f} MB -> peak {small_peak:.0f} MB; input {large / 1e6:.1f} MB -> peak "
          f"{large_peak:.0f} MB")
    assert large_peak - small_peak < 0.5 * (large - small) / 1e6  # far less than the extra input
    out_lines = sum(1 for _ in (tmp_path / "large-out.jsonl").open(encoding="utf-8"))
    assert out_lines > 10_000
