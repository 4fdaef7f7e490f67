"""Writing tagged output so that nothing done is lost, a re-run resumes, and only a finished run is published.

Files: the sentences file OUT (JSON Lines, CSV or Parquet) and its article summaries (JSON Lines), named from
the whole of OUT's name (summaries_path), so that two outputs never share one. While a run goes on, rows go to
journals beside them (`OUT.partial`, `SUMMARIES.partial`); a summary is appended only once its sentences are synced;
only a run that ends normally publishes (atomic renames); resume passes over an article whose id, content hash and
model version match its last summary, and an edited article's old rows are replaced. The protocol, step by step:
docs/architecture.md, "Output that survives a kill".
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path
from typing import Iterator

from policytag.records import atomic_writer
from policytag.tagging.lines import ArticleLines, article_lines
from policytag.tagging.tagger import TaggedArticle

FORMATS = ("jsonl", "csv", "parquet")
PARQUET_BATCH = 10_000
SYNC_SECONDS = 1.0
SUMMARIES_SUFFIX = ".articles.jsonl"


class TagOutputError(ValueError):
    """An output or journal that cannot be used; the message names the file and what to do."""


def summaries_path(out: Path) -> Path:
    """tagged.jsonl -> tagged.articles.jsonl; any other name keeps all of it: news.jan.csv ->
    news.jan.csv.articles.jsonl (summaries are JSON Lines whatever the sentence format)."""
    out = Path(out)
    name = out.name[: -len(".jsonl")] if out.name.lower().endswith(".jsonl") else out.name
    return out.with_name(name + SUMMARIES_SUFFIX)


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


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


def _complete_lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        for line in handle:
            if line.endswith("\n"):  # a line cut by a crash has no newline: it was not done
                yield line


def _finished_lines(out: Path, fmt: str) -> Iterator[str]:
    """The sentence rows of a finished OUT as journal lines."""
    if fmt == "jsonl":
        yield from _complete_lines(out)
    elif fmt == "csv":
        with out.open(encoding="utf-8", newline="") as handle:
            for flat in csv.DictReader(handle):
                yield json.dumps(unflatten(flat), ensure_ascii=False) + "\n"
    else:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(out).iter_batches(batch_size=PARQUET_BATCH):
            for flat in batch.to_pylist():
                yield json.dumps(unflatten(flat), ensure_ascii=False) + "\n"


def _belongs(line: bytes, article_id: str) -> bool:
    """A complete sentence line of that article."""
    try:
        return line.endswith(b"\n") and json.loads(line)["article_id"] == article_id
    except (ValueError, KeyError, TypeError):
        return False


class TagWriter:
    """The journals and the published files of one --out (see the module docstring)."""

    def __init__(self, out: Path, fmt: str = "jsonl"):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.out, self.fmt = Path(out), fmt
        self.summaries = summaries_path(self.out)
        self.sentences_journal, self.summaries_journal = journal_path(self.out), journal_path(self.summaries)
        self.done: dict[str, tuple[str, str]] = {}
        """Article id -> (content hash, model version) of its last version in the journals."""
        self._blocks: list[tuple[str, int]] = []  # (article id, sentences) of each summary, in journal order
        self._sentences = self._summaries = None

    # -- opening: what earlier runs did -------------------------------------------------------------------------

    def open(self) -> dict[str, tuple[str, str]]:
        """Prepare the journals, keeping what earlier runs did; return `done` (id -> (content hash, model))."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()
        if self.summaries_journal.exists() and self.sentences_journal.exists():
            self._recover_journals()
        elif self.out.exists() and self.summaries.exists():
            self._journals_from_finished()
        else:
            with atomic_writer(self.sentences_journal):
                pass
            with atomic_writer(self.summaries_journal):
                pass
        self._sentences = self.sentences_journal.open("a", encoding="utf-8", newline="")
        self._summaries = self.summaries_journal.open("a", encoding="utf-8", newline="")
        self._pending_summaries: list[str] = []
        self._synced = time.monotonic()
        return dict(self.done)

    def _remove_leftovers(self) -> None:
        """Temporary files that a killed run's atomic writes of these four files left behind."""
        ours = [self.out, self.summaries, self.sentences_journal, self.summaries_journal]
        pattern = re.compile("|".join(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}" for path in ours))
        for path in self.out.parent.iterdir():
            if pattern.fullmatch(path.name) and path.is_file():
                path.unlink(missing_ok=True)

    def _summary(self, line: str, path: Path, number: int) -> dict:
        try:
            row = json.loads(line)
            row["article_id"], row["sentences"]  # noqa: B018 (the two fields resume needs)
            return row
        except (ValueError, KeyError, TypeError):
            raise TagOutputError(f"{path}:{number}: not a summary line of policytag tag; remove {path} (and "
                                 f"{self.out.name} beside it) or choose another --out") from None

    def _take(self, row: dict) -> None:
        self._blocks.append((row["article_id"], row["sentences"]))
        self.done[row["article_id"]] = (row.get("content_hash", ""), row.get("model_version", ""))

    def _recover_journals(self) -> None:
        """Keep the journals' done articles: each complete summary whose sentences are all in the sentence
        journal; cut both journals after the last of them (the rest is done again)."""
        summaries_end = sentences_end = 0
        with self.summaries_journal.open("rb") as summaries, self.sentences_journal.open("rb") as sentences:
            for number, raw in enumerate(summaries, 1):
                if not raw.endswith(b"\n"):
                    break
                row = self._summary(raw.decode("utf-8"), self.summaries_journal, number)
                lines = [sentences.readline() for _ in range(row["sentences"])]
                if not all(_belongs(line, row["article_id"]) for line in lines):
                    break
                self._take(row)
                summaries_end, sentences_end = summaries.tell(), sentences.tell()
        os.truncate(self.sentences_journal, sentences_end)
        os.truncate(self.summaries_journal, summaries_end)

    def _journals_from_finished(self) -> None:
        """A finished OUT and its summaries read back into journals (sentences first: a journal of summaries
        is only ever beside a complete sentence journal)."""
        rows = []
        for number, line in enumerate(_complete_lines(self.summaries), 1):
            rows.append((line, self._summary(line, self.summaries, number)))
        mismatch = TagOutputError(
            f"{self.out} does not hold the sentences that {self.summaries} lists; restore both files as a run "
            f"wrote them, or remove them (or choose another --out) to start again")
        try:
            with atomic_writer(self.sentences_journal) as handle:
                lines = _finished_lines(self.out, self.fmt)
                for _, row in rows:
                    for _ in range(row["sentences"]):
                        line = next(lines, None)
                        if line is None or json.loads(line)["article_id"] != row["article_id"]:
                            raise mismatch
                        handle.write(line)
                if next(lines, None) is not None:
                    raise mismatch
        except TagOutputError:
            raise
        except Exception as error:  # a file in another format, or damaged
            raise TagOutputError(f"{self.out}: cannot be read as {self.fmt} to resume ({type(error).__name__}: "
                                 f"{error}); give the --format it was written in, or choose another --out") from None
        with atomic_writer(self.summaries_journal) as handle:
            for line, row in rows:
                handle.write(line)
                self._take(row)

    # -- writing ------------------------------------------------------------------------------------------------

    def write(self, article: ArticleLines | TaggedArticle) -> None:
        """Journal an article's lines (policytag.tagging.lines; a TaggedArticle is encoded here)."""
        if isinstance(article, TaggedArticle):
            article = article_lines(article)
        self._sentences.write(article.sentence_lines)
        self._sentences.flush()
        self._pending_summaries.append(article.summary_line)
        self._blocks.append((article.article_id, article.sentence_count))
        self.done[article.article_id] = (article.content_hash, article.model_version)
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        """Sync the sentence journal to disk, then append the summaries of the articles it now holds."""
        os.fsync(self._sentences.fileno())
        self._summaries.write("".join(self._pending_summaries))
        self._summaries.flush()
        self._pending_summaries.clear()
        self._synced = time.monotonic()

    def abort(self) -> None:
        """An interrupted run: commit what is complete to the journals and leave them for the next run."""
        if self._sentences is None:
            return
        try:
            self._sentences.flush()
            self.sync()
        finally:
            self._sentences.close()
            self._summaries.close()
            self._sentences = self._summaries = None

    # -- publishing ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Publish: OUT and the summaries file from the journals (each article's last version), then remove the
        journals (the summaries journal first)."""
        self.sync()
        self._sentences.close()
        self._summaries.close()
        self._sentences = self._summaries = None
        last = {article_id: number for number, (article_id, _) in enumerate(self._blocks)}
        keep = [last[article_id] == number for number, (article_id, _) in enumerate(self._blocks)]
        lines = self._kept_sentence_lines(keep)
        if self.fmt == "jsonl":
            with atomic_writer(self.out) as handle:
                handle.writelines(lines)
        elif self.fmt == "csv":
            self._to_csv(lines)
        else:
            self._to_parquet(lines)
        with atomic_writer(self.summaries) as handle:
            handle.writelines(line for line, kept in zip(_complete_lines(self.summaries_journal), keep) if kept)
        self.summaries_journal.unlink()
        self.sentences_journal.unlink()

    def _kept_sentence_lines(self, keep: list[bool]) -> Iterator[str]:
        lines = _complete_lines(self.sentences_journal)
        for (_, count), kept in zip(self._blocks, keep):
            for _ in range(count):
                line = next(lines)
                if kept:
                    yield line

    def _to_csv(self, lines: Iterator[str]) -> None:
        with atomic_writer(self.out) as handle:
            writer = None
            for row in (flatten(json.loads(line)) for line in lines):
                if writer is None:
                    writer = csv.DictWriter(handle, fieldnames=list(row), lineterminator="\n")
                    writer.writeheader()
                writer.writerow(row)

    def _to_parquet(self, lines: Iterator[str]) -> None:
        with atomic_writer(self.out, "wb") as handle:
            writer = None
            rows: list[dict] = []
            for line in lines:
                rows.append(flatten(json.loads(line)))
                if len(rows) >= PARQUET_BATCH:
                    writer = _write_parquet_batch(writer, handle, rows)
                    rows = []
            if rows or writer is None:
                writer = _write_parquet_batch(writer, handle, rows)
            writer.close()


def _write_parquet_batch(writer, handle, rows: list[dict]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows) if rows else pa.table({"id": pa.array([], pa.string())})
    if writer is None:
        writer = pq.ParquetWriter(handle, table.schema)
    if rows:
        writer.write_table(table.cast(writer.schema))
    return writer
