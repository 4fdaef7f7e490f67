"""Peak memory of `policytag tag` on a small and a large input, against loading the large input first, in one run.

Writes two JSON Lines inputs of articles made of corpus sentences (40 a piece), `--small` and `--megabytes` MB,
and tags each in a child process; a child's peak resident memory is its own VmHWM (Linux), and the largest of its
segmenting workers' peaks comes from getrusage when there are any. For contrast, the naive way: a child that only
reads the large input into a list of records first (`json.loads` of every line), as a tagger that is not streaming
would.
Prints the peaks and, on its last line, the naive peak over policytag's.

    python benchmarks/tag_memory.py [--model models/classifier] [--megabytes 1000] [--small 10]
                                    [--precision auto] [--segment-workers N] [--keep DIR] [--report FILE]

A 1000 MB input is about 6 million sentences: on two CPU cores that takes hours with multilingual-e5-small, so
give a small model for the memory check (memory does not depend on the model's speed), or run it on a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OWN_PEAK = """
def own_peak_kb():  # VmHWM: this process's own peak (ru_maxrss after fork and exec can carry the parent's)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
"""
CHILD = OWN_PEAK + """
import resource, sys
from policytag.cli import main
code = main(sys.argv[1:])
print(own_peak_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""
NAIVE = OWN_PEAK + """
import json, sys
with open(sys.argv[1], encoding="utf-8") as handle:
    records = [json.loads(line) for line in handle]
print(own_peak_kb(), 0)
"""


def write_input(path: Path, megabytes: float, sentences: list[str]) -> int:
    with path.open("w", encoding="utf-8") as handle:
        number = 0
        while handle.tell() < megabytes * 1_000_000:
            text = " ".join(sentences[(number + i) % len(sentences)] for i in range(40))
            handle.write(json.dumps({"id": f"a{number}", "text": text, "feed": "synthetic"}) + "\n")
            number += 1
    return path.stat().st_size


def run_child(args: list[str]) -> tuple[float, float, float]:
    """(own peak MB, largest child's peak MB, seconds) of a Python child running `args`."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"child failed ({result.returncode}): {result.stderr[-2000:]}")
    own, children = map(int, result.stdout.strip().splitlines()[-1].split())
    return own / 1024, children / 1024, time.perf_counter() - started  # both in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/classifier"))
    parser.add_argument("--megabytes", type=float, default=1000)
    parser.add_argument("--small", type=float, default=10, help="MB of the small input")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--segment-workers", type=int, default=None)
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    parser.add_argument("--keep", type=Path, help="write inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--report", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    sentences = [json.loads(line)["text"] for line in args.sentences.read_text(encoding="utf-8").splitlines()]
    with tempfile.TemporaryDirectory(prefix="policytag-memory-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        peaks, report = {}, {}
        for name, megabytes in (("small", args.small), ("large", args.megabytes)):
            size = write_input(work / f"{name}.jsonl", megabytes, sentences)
            tag = ["tag", str(work / f"{name}.jsonl"), "--out", str(work / f"{name}-tagged.jsonl"), "--model",
                   str(args.model), "--precision", args.precision, "--no-progress"]
            if args.segment_workers is not None:
                tag += ["--segment-workers", str(args.segment_workers)]
            own, workers, seconds = run_child([CHILD, *tag])
            rows = sum(1 for _ in (work / f"{name}-tagged.jsonl").open(encoding="utf-8"))
            peaks[name] = own
            report[name] = {"bytes": size, "sentences": rows, "peak_mb": own, "worker_peak_mb": workers,
                            "seconds": seconds}
            print(f"policytag tag, {size / 1e6:,.0f} MB input ({rows:,} sentences, {seconds:,.0f} s): peak "
                  f"{own:,.0f} MB" + (f", largest segmenting worker {workers:,.0f} MB" if workers else ""),
                  flush=True)
        naive, _, seconds = run_child([NAIVE, str(work / "large.jsonl")])
        print(f"naive: read the {args.megabytes:,.0f} MB input into memory first: peak {naive:,.0f} MB "
              f"({seconds:,.0f} s), before any tagging")
    if args.report:
        args.report.write_text(json.dumps({**report, "naive_peak_mb": naive}, indent=1) + "\n", encoding="utf-8")
    print(f"policytag peak, large / small input: {peaks['large'] / peaks['small']:.2f}x for "
          f"{args.megabytes / args.small:,.0f}x the input")
    print(f"ratio naive/policytag peak memory on the large input: {naive / peaks['large']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
