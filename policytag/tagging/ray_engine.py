"""`policytag tag --engine ray`: the job of policytag.tagging.run, with sentence scoring spread over a Ray cluster (or a
local Ray instance).

The driver reads and segments the inputs as a stream, as the local engine does, in rounds of about --ray-window
sentences; a round's texts go through a pool of scoring actors (Ray Data `map_batches`, one scorer per actor), and
the articles, in input order, go to policytag.tagging.job.run_job, the local engine's loop (same files, resume, pages,
exit code). RAY_ADDRESS names the cluster (unset: a local instance; ray:// is refused). Why rounds, and what every
node needs: docs/architecture.md, "The Ray engine".
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from policytag.cpu import available_cores
from policytag.tagging.inputs import SkippedInput
from policytag.tagging.job import check_outputs, run_job, segment_workers

DEFAULT_WINDOW = 100_000
"""Sentences per round: large enough that starting the actor pool (a model load each) is a small part of it."""
CPUS_PER_ACTOR = 4
"""On a cluster without GPUs: the default pool has one actor per this many CPUs."""
GPU_BATCH, CPU_BATCH = 16384, 256
"""Sentences per actor call (at least --batch-size); the scorer splits a call into its own forward passes. On a
GPU a call ends in a synchronisation and its tokenisation is not overlapped, so calls are large there (one slice
of the GPU scorer, policytag.fast_scorer.GPU_SLICE)."""
MAX_BLOCKS_PER_ACTOR = 64
"""Blocks (Ray tasks) per round are about one call each, up to this many per actor."""
FORWARDED_ENV = ("POLICYTAG_CACHE_DIR",)
"""Set on the driver, given to the actors too: where the int8 export is cached (shared storage saves each node
its own export)."""


class ScoreBatches:
    """The Ray Data callable class: each actor loads the scorer once, then turns batches of {row, text} into
    {row, scores} ([rows, labels] float32, the label order of the model)."""

    def __init__(self, model_dir: str, precision: str, batch_size: int | None):
        import ray
        from transformers.utils import logging as transformers_logging

        from policytag.fast_scorer import load_scorer

        transformers_logging.disable_progress_bar()  # one "Loading weights" bar per actor and round is noise
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")  # the actor's share of the node
        self.scorer = load_scorer(Path(model_dir), precision=precision, batch_size=batch_size,
                                  threads=max(1, int(cpus)) if cpus else None)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        scores = self.scorer.predict_proba([str(text) for text in batch["text"]])
        return {"row": batch["row"], "scores": np.asarray(scores, dtype=np.float32)}


def describe_model(model_dir: str) -> dict:
    """Load the classifier once before any input is read (same checks, same messages as the local engine), so
    the driver learns its labels, thresholds and version; an error comes back as {"error": message}."""
    from policytag.model import Classifier, ClassifierError

    try:
        classifier = Classifier.load(model_dir, device="cpu")
    except (ClassifierError, OSError) as error:
        return {"error": str(error)}
    return {"labels": list(classifier.labels), "thresholds": classifier.thresholds.tolist(),
            "model_version": classifier.model_version}


class RayAddressError(ValueError):
    """RAY_ADDRESS names a cluster this engine cannot run from."""


def connect(ray) -> bool:
    """Join RAY_ADDRESS's cluster, or start a local instance; True when this call started Ray (so it stops it).
    A session already open in this process (a test's, a notebook's) is used as it is."""
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS") or "local"
    if address.startswith("ray://"):
        raise RayAddressError(
            f"RAY_ADDRESS={address} is a Ray Client address, and Ray Data does not run over Ray Client; run "
            "`policytag tag` on a node of the cluster (RAY_ADDRESS=auto), or submit it as a Ray job: "
            "`ray job submit --address http://HEAD:8265 -- policytag tag ... --engine ray`")
    options: dict = {"logging_level": logging.WARNING}
    if address == "local":
        options.update(num_cpus=available_cores(), include_dashboard=False)
    ray.init(address=address, **options)
    return True


def quiet_ray_data(ray) -> None:
    """Our own progress bar and summary line take the place of Ray Data's."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "Progress bars disabled"


def pool_shape(resources: dict, actors: int | None) -> tuple[int, int, int]:
    """(actors, CPUs per actor, GPUs per actor) for the cluster's total resources: one actor per GPU when there
    are GPUs, else one per CPUS_PER_ACTOR CPUs; --actors overrides the count."""
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if gpus:
        return actors or gpus, 1, 1
    size = actors or max(1, cpus // CPUS_PER_ACTOR)
    return size, min(CPUS_PER_ACTOR, max(1, cpus // size)), 0


def rounds(entries: Iterable, sentences_per_round: int) -> Iterator[list]:
    """Consecutive slices of the segmented stream (skipped inputs included, in place) of about
    `sentences_per_round` sentences each."""
    window: list = []
    size = 0
    for entry in entries:
        window.append(entry)
        if not isinstance(entry, SkippedInput):
            size += len(entry[1].sentences)
            if size >= sentences_per_round:
                yield window
                window, size = [], 0
    if window:
        yield window


def score_texts(ray, texts: list[str], labels: int, *, model_dir: str, precision: str, batch_size: int | None,
                call_size: int, actors: int, cpus: int, gpus: int, on_batch: Callable[[int], None]) -> np.ndarray:
    """Scores [len(texts), labels] in the order of `texts`, computed by a pool of `actors` ScoreBatches that get
    `call_size` sentences a call (of similar lengths: they are sorted, so a batch pads little)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    blocks = max(1, min(len(texts), max(actors, math.ceil(len(texts) / call_size)), MAX_BLOCKS_PER_ACTOR * actors))
    actors = min(actors, blocks)  # a small last round starts no actor that would get nothing to do
    env = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    dataset = ray.data.from_items([{"row": i, "text": texts[i]} for i in order], override_num_blocks=blocks)
    dataset = dataset.map_batches(
        ScoreBatches, fn_constructor_kwargs={"model_dir": model_dir, "precision": precision, "batch_size": batch_size},
        batch_size=call_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus, num_gpus=gpus, **({"runtime_env": {"env_vars": env}} if env else {}),
    )
    scores = np.zeros((len(texts), labels), dtype=np.float32)
    seen = np.zeros(len(texts), dtype=bool)
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        scores[batch["row"]] = batch["scores"]
        seen[batch["row"]] = True
        on_batch(len(batch["row"]))
    if not seen.all():
        raise RuntimeError(f"Ray returned scores for {int(seen.sum())} of {len(texts)} sentences")
    return scores


def run_tag_ray(args: argparse.Namespace) -> int:
    """The Ray engine: checks, a Ray session, the model described, then policytag.tagging.job.run_job with the
    rounds of ray_results as its stream of tagged articles."""
    import ray

    window = getattr(args, "ray_window", None) or DEFAULT_WINDOW
    requested_actors = getattr(args, "actors", None)
    if window < 1 or (requested_actors is not None and requested_actors < 1):
        print("error: --actors and --ray-window must be at least 1", file=sys.stderr)
        return 2
    problem = check_outputs(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        started_ray = connect(ray)
    except RayAddressError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        quiet_ray_data(ray)
        model_dir = str(Path(args.model).resolve())
        if os.environ.get("RAY_ADDRESS") and not Path(model_dir).is_dir():
            # not mounted on this node: ask a worker, where the actors will read it
            model = ray.get(ray.remote(describe_model).remote(model_dir))
        else:
            model = describe_model(model_dir)
        if "error" in model:
            where = (" (the Ray workers read it too: give a path on storage that every node of the cluster reads)"
                     if os.environ.get("RAY_ADDRESS") else "")
            print(f"error: {model['error']}{where}", file=sys.stderr)
            return 2
        model["dir"] = model_dir
        actors, cpus, gpus = pool_shape(ray.cluster_resources(), requested_actors)
        call_size = max(args.batch_size or 0, GPU_BATCH if gpus else CPU_BATCH)
        description = (f"Ray, {actors} actors of {'1 GPU' if gpus else f'{cpus} CPUs'}, precision {args.precision}, "
                       f"{call_size} sentences a call")
        pool = {"call_size": call_size, "actors": actors, "cpus": cpus, "gpus": gpus}

        def results(done, on_scored):
            return ray_results(ray, args, model, pool, window, done, on_scored)

        return run_job(args, model["labels"], model["model_version"], description, results)
    finally:
        if started_ray:
            ray.shutdown()


def ray_results(ray, args: argparse.Namespace, model: dict, pool: dict, window: int, done,
                on_scored: Callable[[int], None]) -> Iterator:
    """Articles' lines (policytag.tagging.lines) and skipped inputs in input order: the inputs segmented as a
    stream, in rounds of about `window` sentences, each round scored by the actor pool while the next one is read
    and segmented; rows are built and encoded here, on the driver."""
    from policytag.tagging.inputs import iter_inputs
    from policytag.tagging.lines import article_lines
    from policytag.tagging.pages import label_colours
    from policytag.tagging.tagger import segment_stream, tag_article

    labels = model["labels"]
    colours = label_colours(labels) if args.html else None
    thresholds = np.asarray(model["thresholds"], dtype=np.float32)
    stream = rounds(segment_stream(iter_inputs(args.inputs, args.id_column, args.text_column), done=done,
                                   workers=segment_workers(args, pool["gpus"] > 0)), window)
    with ThreadPoolExecutor(1, thread_name_prefix="policytag-segment") as ahead:
        pending = ahead.submit(next, stream, None)  # the next round is segmented while this one is scored
        while (current := pending.result()) is not None:
            pending = ahead.submit(next, stream, None)
            texts = [s.text for entry in current if not isinstance(entry, SkippedInput) for s in entry[1].sentences]
            scores = (score_texts(ray, texts, len(labels), model_dir=model["dir"], precision=args.precision,
                                  batch_size=args.batch_size, on_batch=on_scored, **pool)
                      if texts else np.zeros((0, len(labels)), dtype=np.float32))
            row = 0
            for entry in current:
                if isinstance(entry, SkippedInput):
                    yield entry
                    continue
                item, segmented = entry
                count = len(segmented.sentences)
                yield article_lines(tag_article(item, segmented, scores[row : row + count], labels, thresholds,
                                                model["model_version"]), colours)
                row += count
