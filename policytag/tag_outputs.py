"""Writing tagged output so that nothing done is lost and a re-run resumes.

While a run goes on, sentences and article summaries are appended to journals beside the output
(`OUT.partial` and `SUMMARIES.partial`); an article counts as done once its summary line is in the journal.
Sentences are flushed after every article; about once a second (`SYNC_SECONDS`) the sentence journal is synced to
disk and only then are the summaries of the articles it holds appended, so that a summary on disk always has its
sentences on disk, even after a power cut (which loses at most that second's articles, done again on resume).
At the end the journal becomes OUT in the chosen format (JSON Lines, CSV or Parquet) by an atomic rename. A new
run with the same --out first keeps what is done (from the journals of an interrupted run or from the finished OUT
of an earlier one) and then skips those articles.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Iterator

from policytag.records import atomic_writer
from policytag.tagger import TaggedArticle

FORMATS = ("jsonl", "csv", "parquet")
PARQUET_BATCH = 10_000
SYNC_SECONDS = 1.0


def summaries_path(out: Path) -> Path:
    """tagged.jsonl -> tagged.articles.jsonl (summaries are JSON Lines whatever the sentence format)."""
    return out.with_name(out.name.split(".")[0] + ".articles.jsonl")


def _journal(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _iter_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):  # a line cut by a crash has no newline: it was not done
                yield json.loads(line)


def flatten(row: dict) -> dict:
    """A sentence row for a table: labels joined by ';', one score_<label> column per label, extra as JSON."""
    flat = {key: value for key, value in row.items() if key not in ("labels", "scores", "extra")}
    flat["labels"] = ";".join(row["labels"])
    flat.update({f"score_{label}": score for label, score in row["scores"].items()})
    flat["extra"] = json.dumps(row["extra"], ensure_ascii=False)
    return flat


def unflatten(flat: dict) -> dict:
    row = {key: value for key, value in flat.items() if not key.startswith("score_") and key != "extra"}
    for key in ("index", "start", "end"):
        row[key] = int(row[key])
    row["labels"] = [label for label in str(flat["labels"] or "").split(";") if label]
    row["scores"] = {key[len("score_"):]: float(value) for key, value in flat.items() if key.startswith("score_")}
    row["extra"] = json.loads(flat["extra"])
    return row


def _iter_finished(out: Path, fmt: str) -> Iterator[dict]:
    if fmt == "jsonl":
        yield from _iter_jsonl(out)
    elif fmt == "csv":
        with out.open(encoding="utf-8", newline="") as handle:
            yield from map(unflatten, csv.DictReader(handle))
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(out).iter_batches(batch_size=PARQUET_BATCH):
            yield from map(unflatten, batch.to_pylist())


class TagWriter:
    def __init__(self, out: Path, fmt: str = "jsonl"):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.out, self.fmt = Path(out), fmt
        self.summaries = summaries_path(self.out)
        self.done_ids: set[str] = set()

    def open(self) -> set[str]:
        """Prepare the journals, keeping what earlier runs finished; return the ids of the articles done."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        sentences_journal, summaries_journal = _journal(self.out), _journal(self.summaries)
        if summaries_journal.exists():
            source_summaries, source_sentences = _iter_jsonl(summaries_journal), None
        elif self.summaries.exists() and self.out.exists():
            source_summaries, source_sentences = _iter_jsonl(self.summaries), _iter_finished(self.out, self.fmt)
        else:
            source_summaries, source_sentences = iter(()), None
        kept_summaries = list(source_summaries)
        self.done_ids = {row["article_id"] for row in kept_summaries}
        if source_sentences is None and sentences_journal.exists():
            source_sentences = _iter_jsonl(sentences_journal)
        with atomic_writer(sentences_journal) as handle:
            for row in source_sentences or ():
                if row["article_id"] in self.done_ids:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        with atomic_writer(summaries_journal) as handle:
            for row in kept_summaries:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._sentences = sentences_journal.open("a", encoding="utf-8")
        self._summaries = summaries_journal.open("a", encoding="utf-8")
        self._pending_summaries: list[str] = []
        self._synced = time.monotonic()
        return set(self.done_ids)

    def write(self, article: TaggedArticle) -> None:
        # vars(): the dataclasses' fields in order, as asdict() gives them, without its deep copy of every value
        self._sentences.write("".join(json.dumps(vars(sentence), ensure_ascii=False) + "\n"
                                      for sentence in article.sentences))
        self._sentences.flush()
        self._pending_summaries.append(json.dumps(vars(article.summary), ensure_ascii=False) + "\n")
        self.done_ids.add(article.summary.article_id)
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        """Sync the sentence journal to disk, then append the summaries of the articles it now holds."""
        os.fsync(self._sentences.fileno())
        self._summaries.write("".join(self._pending_summaries))
        self._summaries.flush()
        self._pending_summaries.clear()
        self._synced = time.monotonic()

    def close(self) -> None:
        """Turn the journals into the final files (atomically) and remove them."""
        self.sync()
        self._sentences.close()
        self._summaries.close()
        sentences_journal, summaries_journal = _journal(self.out), _journal(self.summaries)
        if self.fmt == "jsonl":
            os.replace(sentences_journal, self.out)
        elif self.fmt == "csv":
            self._to_csv(sentences_journal)
        else:
            self._to_parquet(sentences_journal)
        os.replace(summaries_journal, self.summaries)

    def _to_csv(self, journal: Path) -> None:
        with atomic_writer(self.out) as handle:
            writer = None
            for row in map(flatten, _iter_jsonl(journal)):
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(row), lineterminator="\n")
                    writer.writeheader()
                writer.writerow(row)
        journal.unlink()

    def _to_parquet(self, journal: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_writer(self.out, "wb") as handle:
            writer = None
            rows: list[dict] = []
            for row in _iter_jsonl(journal):
                rows.append(flatten(row))
                if len(rows) >= PARQUET_BATCH:
                    writer = _write_parquet_batch(writer, handle, rows)
                    rows = []
            if rows or writer is None:
                writer = _write_parquet_batch(writer, handle, rows)
            writer.close()
        journal.unlink()


def _write_parquet_batch(writer, handle, rows: list[dict]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows) if rows else pa.table({"id": pa.array([], pa.string())})
    if writer is None:
        writer = pq.ParquetWriter(handle, table.schema)
    if rows:
        writer.write_table(table.cast(writer.schema))
    return writer
