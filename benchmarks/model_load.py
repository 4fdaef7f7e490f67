"""Size on disk, load time and resident memory of classifier directories, against a named alternative, in one run.

For each directory: the fp32 weights (model.safetensors) and the int8 ONNX export (made first if the cache lacks
it) in MB; then, in a fresh Python child per load (so that nothing is cached in memory), the seconds from the
imports done to the first sentence scored, and the child's peak resident memory (VmHWM, Linux), for the fp32 model
(`Classifier.load`) and the int8 scorer (`OnnxScorer`). The best of `--rounds` children counts for time, the
largest peak for memory. Its main use: the student with its vocabulary pruned (distill.vocabulary_languages)
against the same student with the teacher's whole vocabulary.

    python benchmarks/model_load.py models/student --against DIR [--rounds 3]

The last line gives each figure of the first directory as a ratio of --against's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time
from policytag.fast_scorer import OnnxScorer
from policytag.model import Classifier
started = time.perf_counter()
if sys.argv[2] == "int8":
    scorer = OnnxScorer(sys.argv[1], threads=1)
else:
    scorer = Classifier.load(sys.argv[1], device="cpu")
scorer.predict_proba(["The ministry ordered the platform to remove the posts within 24 hours."])
seconds = time.perf_counter() - started
with open("/proc/self/status") as status:  # VmHWM: this process's own peak (ru_maxrss can carry the parent's)
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024}))
"""


def measure(model_dir: Path, rounds: int) -> dict:
    from policytag.fast_scorer import OnnxScorer

    onnx_path = OnnxScorer(model_dir, threads=1).onnx_path  # exports once if the cache lacks it
    figures = {"weights_mb": (model_dir / "model.safetensors").stat().st_size / 1e6,
               "int8_mb": onnx_path.stat().st_size / 1e6}
    for precision in ("fp32", "int8"):
        runs = []
        for _ in range(rounds):
            result = subprocess.run([sys.executable, "-c", CHILD, str(model_dir), precision], capture_output=True,
                                    text=True)
            if result.returncode != 0:
                raise SystemExit(f"{model_dir} ({precision}) failed to load: {result.stderr[-2000:]}")
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
        figures[f"{precision}_load_s"] = min(run["seconds"] for run in runs)
        figures[f"{precision}_peak_mb"] = max(run["peak_mb"] for run in runs)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a classifier directory, e.g. models/student")
    parser.add_argument("--against", type=Path, required=True, help="the classifier directory to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results = {str(path): measure(path, args.rounds) for path in (args.model, args.against)}
    keys = list(next(iter(results.values())))
    print("| model | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, figures in results.items():
        print(f"| {name} | " + " | ".join(f"{figures[key]:.2f}" for key in keys) + " |")
    mine, theirs = results[str(args.model)], results[str(args.against)]
    print(f"{args.model} / {args.against}: " + ", ".join(f"{key} {mine[key] / theirs[key]:.2f}x" for key in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
