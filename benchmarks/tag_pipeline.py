"""How fast `policytag tag`'s CPU side runs (read, segment, build rows, encode, write) with the scorer taken out,
for 1, 2, ... worker processes, against the design before rows moved to the workers, measured in the same run.

The job is the real one: policytag.tagging.job.run_job over a JSON Lines input into a JSON Lines output (journals,
sync, publishing), with policytag.tagging.pipeline.tag_lines as the local engine calls it. Only the scorer is
replaced, by NoopScorer: the interface of policytag's scorers (labels, thresholds, model_version, predict_proba
giving [n, labels] scores), zeros, its own time measured and reported (and left in the figures: it is tiny).
  new, W workers: W processes segment, build rows and encode; the main process reads, "scores" and writes;
  old, W workers: W processes segment; the main process builds the rows (tag_article) and encodes them with
                  json.dumps of each row, as TagWriter did before (the named alternative).
With 1 worker the new design is one process doing everything. Outputs of every way are checked byte-identical.

Per core: sentences per CPU-second of all the processes of a run (the main one and its workers: getrusage),
which a busy machine disturbs least, and sentences/s over the cores the run can use (min(processes, cores)).
The main process's own sentences per CPU-second is the ceiling no number of workers lifts: on a GPU, with many
cores, that is what decides whether the scorer is kept busy.
Ways and worker counts run in interleaved rounds, so that other jobs on the machine slow each alike. The load
average is printed before and after.

    python benchmarks/tag_pipeline.py [--articles 10800] [--sentences-per-article 14] [--workers 1 2 ...]
                                      [--rounds 2] [--batch-sentences 65536] [--sentences data/sentences.jsonl]

The default input is shaped like the GPU end-to-end input of benchmarks/RESULTS.md (10,800 articles, about
152,400 sentences): articles of 19 corpus sentences in a row (so every language and kind of sentence of the
corpus; segmented again, they make about 14 sentences an article), with an id and a carried field. --batch-sentences is what a GPU scorer is handed per call.

Worker processes are spawned, and a spawned process imports the script that started it: so this one imports
nothing heavy (torch) at the top, as policytag's command does not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from policytag import language
from policytag.cpu import available_cores
from policytag.labels import LABEL_NAMES
from policytag.tagging.inputs import SkippedInput, iter_inputs
from policytag.tagging.job import run_job
from policytag.tagging.lines import ArticleLines
from policytag.tagging.pipeline import tag_lines
from policytag.tagging.tagger import TaggedArticle, tag_stream


class NoopScorer:
    """policytag's scorer interface with no model: every score 0; `seconds` is the time spent in it."""

    def __init__(self, labels=LABEL_NAMES):
        self.labels = list(labels)
        self.thresholds = np.full(len(self.labels), 0.5, dtype=np.float32)
        self.model_version = "no-op"
        self.seconds = 0.0

    def predict_proba(self, texts) -> np.ndarray:
        started = time.perf_counter()
        scores = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        self.seconds += time.perf_counter() - started
        return scores


def write_input(path: Path, texts: list[str], articles: int, per_article: int) -> int:
    """`articles` records of `per_article` consecutive corpus sentences each (wrapping round); its size."""
    with path.open("w", encoding="utf-8") as handle:
        for number in range(articles):
            start = number * per_article
            text = " ".join(texts[(start + i) % len(texts)] for i in range(per_article))
            handle.write(json.dumps({"id": f"a{number}", "text": text, "feed": "synthetic"}, ensure_ascii=False)
                         + "\n")
    return path.stat().st_size


def old_lines(tagged: TaggedArticle) -> ArticleLines:
    """An article's lines as TagWriter encoded them before: json.dumps of each row, in the main process."""
    summary = tagged.summary
    return ArticleLines(summary.article_id, summary.content_hash, summary.model_version, len(tagged.sentences),
                        "".join(json.dumps(vars(s), ensure_ascii=False) + "\n" for s in tagged.sentences),
                        json.dumps(vars(summary), ensure_ascii=False) + "\n")


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and of it and its finished children (a run's workers are joined when it ends)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    main = own.ru_utime + own.ru_stime
    return main, main + children.ru_utime + children.ru_stime


class Way:
    """One design at one worker count: its runs, timed."""

    def __init__(self, design: str, workers: int, source: Path, work: Path, batch: int):
        self.design, self.workers, self.source, self.work, self.batch = design, workers, source, work, batch
        self.name = f"{design}, {workers} worker{'s' if workers > 1 else ''}"
        self.seconds = self.cpu = self.main_cpu = self.scorer_seconds = 0.0
        self.sentences, self.runs, self.output = 0, 0, None

    def run(self) -> None:
        out = self.work / f"{self.design}-{self.workers}-{self.runs}.jsonl"
        scorer = NoopScorer()
        counted = []

        def results(done, on_scored):
            items = iter_inputs([str(self.source)])
            if self.design == "new":
                return tag_lines(items, scorer, self.batch, done, self.workers, on_scored)
            return (entry if isinstance(entry, SkippedInput) else old_lines(entry)
                    for entry in tag_stream(items, scorer, self.batch, done, self.workers, on_scored))

        def counting(done, on_scored):
            for result in results(done, on_scored):
                counted.append(0 if isinstance(result, SkippedInput) else result.sentence_count)
                yield result

        for cached in (language._identifier, language._automaton, language._weights):
            cached.cache_clear()  # each run loads the language model, in each of its processes, as a tag run does
        args = argparse.Namespace(out=out, format="jsonl", html=None, no_progress=True)
        (main_cpu, cpu), started = cpu_seconds(), time.perf_counter()
        code = run_job(args, scorer.labels, scorer.model_version, f"no-op scorer, {self.name}", counting)
        self.seconds += time.perf_counter() - started
        main_cpu_after, cpu_after = cpu_seconds()
        self.main_cpu += main_cpu_after - main_cpu
        self.cpu += cpu_after - cpu
        if code != 0:
            raise SystemExit(f"{self.name}: run_job ended with exit code {code}")
        self.scorer_seconds += scorer.seconds
        self.sentences += sum(counted)
        self.runs += 1
        output = out.read_bytes()
        if self.output is not None and output != self.output:
            raise SystemExit(f"{self.name}: two runs wrote different bytes")
        self.output = output
        out.unlink()
        out.with_name(out.name.replace(".jsonl", ".articles.jsonl")).unlink()

    @property
    def rate(self) -> float:
        return self.sentences / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.sentences / self.cpu

    @property
    def main_ceiling(self) -> float:
        """Sentences per CPU-second of the main process: the rate no number of workers can take it past (on a
        GPU, where the scorer's own time is small, this is what bounds `policytag tag`)."""
        return self.sentences / self.main_cpu

    @property
    def cores_used(self) -> int:
        return min(self.workers + (self.workers > 1), available_cores())

    def report(self) -> str:
        workers = (f"; workers {self.sentences / (self.cpu - self.main_cpu):,.0f} sentences per CPU-second"
                   if self.workers > 1 else "")
        return (f"{self.name:>18}: {self.rate:8,.0f} sentences/s; {self.per_cpu_second:6,.0f} sentences per "
                f"CPU-second; {self.rate / self.cores_used:6,.0f} sentences/s per core over {self.cores_used} "
                f"core{'s' if self.cores_used > 1 else ''}; main process {self.main_ceiling:7,.0f} sentences per "
                f"CPU-second{workers}; no-op scorer {self.scorer_seconds:.3f} s of {self.seconds:.1f} s")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main(argv: list[str] | None = None) -> int:
    from policytag.fast_scorer import GPU_CALL_SENTENCES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_800)
    parser.add_argument("--sentences-per-article", type=int, default=19,
                        help="corpus sentences joined into an article (some join into one when segmented again)")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="worker counts to measure (default: 1, 2 and every power of 2 up to the cores)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved runs of every way")
    parser.add_argument("--batch-sentences", type=int, default=GPU_CALL_SENTENCES,
                        help="sentences per scorer call (default: what a GPU scorer is handed)")
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    args = parser.parse_args(argv)
    cores = available_cores()
    counts = args.workers or sorted({1, 2, *(2 ** k for k in range(2, 8) if 2 ** k <= cores)})
    texts = [json.loads(line)["text"] for line in args.sentences.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    with tempfile.TemporaryDirectory(prefix="policytag-pipeline-") as scratch:
        work = Path(scratch)
        source = work / "input.jsonl"
        size = write_input(source, texts, args.articles, args.sentences_per_article)
        print(f"input: {args.articles:,} articles of {args.sentences_per_article} sentences from {args.sentences} "
              f"({size / 1e6:.1f} MB); {cores} cores available; load average {load_average()}", flush=True)
        ways = [Way("new", workers, source, work, args.batch_sentences) for workers in counts]
        ways += [Way("old", workers, source, work, args.batch_sentences) for workers in counts if workers > 1]
        for _ in range(args.rounds):
            for way in ways:
                way.run()
    print(f"{ways[0].sentences // ways[0].runs:,} sentences a run, {args.rounds} runs of each way; outputs "
          + ("byte-identical" if len({way.output for way in ways}) == 1 else "DIFFER"))
    for way in ways:
        print(way.report())
    print(f"load average after: {load_average()}")
    by_name = {(way.design, way.workers): way for way in ways}
    one = by_name[("new", 1)]
    for workers in counts:
        if workers > 1:
            new, old = by_name[("new", workers)], by_name[("old", workers)]
            print(f"ratio new/old, {workers} workers: {new.rate / old.rate:.2f}x sentences/s, "
                  f"{new.main_ceiling / old.main_ceiling:.2f}x sentences per main-process CPU-second; "
                  f"new {workers} workers / new 1 worker: {new.rate / one.rate:.2f}x sentences/s")
    return 0 if len({way.output for way in ways}) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
