"""Where the rows go: CSV, JSON Lines or Parquet by the output's suffix (:func:`open_writer`), or an aligned
table on a stream (:class:`TableWriter`), each resuming a file an earlier run left.

Formats, one row per image:

- ``.csv``: a header, then ``path, top1_id, top1_name, top1_prob, top2_id, ...``;
- ``.jsonl`` / ``.ndjson``: ``{"path": ..., "ids": [...], "names": [...], "probs": [...]}`` per line;
- ``.parquet`` (needs pyarrow): columns ``path`` (string), ``ids`` (list<int64>), ``names``
  (list<string>), ``probs`` (list<double>).

Resume. An existing output is read first: the paths it holds are :attr:`Writer.done` (the caller skips
them) and new rows are appended after them. A run that was killed may have left a partial last line: it
is cut off (that image is predicted again). CSV and JSON Lines are flushed after every batch. Parquet
cannot be appended to, so a Parquet run writes its rows as JSON Lines to ``FILE.parquet.partial``
beside it and, on :meth:`Writer.close`, writes ``FILE.parquet`` whole (the rows already there, then the
new ones) under a temporary name renamed over it, and removes the ``.partial`` file; a run killed before
that leaves the ``.partial`` file, which the next run resumes from.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, TextIO, Union

from .rows import Row

__all__ = ["SUFFIXES", "Writer", "TableWriter", "open_writer", "csv_header", "read_rows"]

SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")


def csv_header(top: int) -> list[str]:
    """The CSV header for ``top`` classes per row."""
    return ["path"] + [f"top{r}_{what}" for r in range(1, top + 1) for what in ("id", "name", "prob")]


def _complete_lines(path: Path) -> bytes:
    """The file's text up to its last newline; a partial last line (a killed run's) is cut off the file."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with open(path, "r+b") as file:
            file.truncate(end)
        data = data[:end]
    return data


class Writer:
    """Appends rows to an output file; :attr:`done` holds the paths it already held."""

    def __init__(self, path: Union[str, os.PathLike], top: int) -> None:
        self.path = Path(path)
        self.top = top
        self.done: set[str] = set()

    def write(self, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _CsvWriter(Writer):
    def __init__(self, path: Union[str, os.PathLike], top: int) -> None:
        super().__init__(path, top)
        header = csv_header(top)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            lines = list(csv.reader(io.StringIO(_complete_lines(self.path).decode("utf-8"))))
            if lines and lines[0] != header:
                raise ValueError(f"{self.path}: its columns are not those of this run ({len(header)} columns for "
                                 f"--top {top}): found {','.join(lines[0][:4])},...; pass another output, or "
                                 "--overwrite to start it again")
            self.done = {line[0] for line in lines[1:] if len(line) == len(header)}
            fresh = not lines
        self._file: TextIO = open(self.path, "a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        if fresh:
            self._csv.writerow(header)
            self._file.flush()

    def write(self, rows: Sequence[Row]) -> None:
        for row in rows:
            cells: list[Any] = [row.path]
            for i, name, p in zip(row.ids, row.names, row.probs):
                cells += [i, name, repr(p)]
            self._csv.writerow(cells)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _json_line(row: Row) -> str:
    return json.dumps({"path": row.path, "ids": list(row.ids), "names": list(row.names), "probs": list(row.probs)},
                      ensure_ascii=False) + "\n"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(_complete_lines(path).decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record["path"]
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"{path}, line {number}: expected a JSON object with a \"path\", found "
                             f"{line[:60]!r}; pass another output, or --overwrite to start it again") from None
        records.append(record)
    return records


class _JsonLinesWriter(Writer):
    def __init__(self, path: Union[str, os.PathLike], top: int) -> None:
        super().__init__(path, top)
        if self.path.exists():
            self.done = {record["path"] for record in _read_jsonl(self.path)}
        self._file: TextIO = open(self.path, "a", encoding="utf-8")

    def write(self, rows: Sequence[Row]) -> None:
        self._file.write("".join(_json_line(row) for row in rows))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _ParquetWriter(Writer):
    def __init__(self, path: Union[str, os.PathLike], top: int) -> None:
        super().__init__(path, top)
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"{self.path}: writing Parquet needs pyarrow: pip install pyarrow "
                              "(or write .csv or .jsonl)") from None
        self._pq = pq
        self._journal = self.path.with_name(self.path.name + ".partial")
        self._before = pq.read_table(self.path) if self.path.exists() else None
        if self._before is not None:
            self.done = set(self._before.column("path").to_pylist())
        self._journal_file = _JsonLinesWriter(self._journal, top)
        self.done |= self._journal_file.done

    def write(self, rows: Sequence[Row]) -> None:
        self._journal_file.write(rows)

    def close(self) -> None:
        import pyarrow as pa

        self._journal_file.close()
        schema = pa.schema([("path", pa.string()), ("ids", pa.list_(pa.int64())), ("names", pa.list_(pa.string())),
                            ("probs", pa.list_(pa.float64()))])
        records = _read_jsonl(self._journal)
        new = pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in records], schema=schema)
        table = new if self._before is None else pa.concat_tables([self._before.cast(schema), new])
        temporary = self.path.with_name(self.path.name + ".tmp")
        self._pq.write_table(table, temporary)
        os.replace(temporary, self.path)
        self._journal.unlink()


_WRITERS = {".csv": _CsvWriter, ".jsonl": _JsonLinesWriter, ".ndjson": _JsonLinesWriter, ".parquet": _ParquetWriter}


def open_writer(path: Union[str, os.PathLike], top: int, *, overwrite: bool = False) -> Writer:
    """A writer for ``path``, its format chosen by the suffix (:data:`SUFFIXES`), resuming what the file
    holds unless ``overwrite``."""
    path = Path(path)
    kind = _WRITERS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"-o {path}: expected a {', '.join(SUFFIXES)} file, found the suffix "
                         f"{path.suffix or '(none)'!r}")
    if overwrite:
        for stale in (path, path.with_name(path.name + ".partial")):
            if stale.exists():
                stale.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    return kind(path, top)


class TableWriter(Writer):
    """An aligned text table on a stream (the terminal): path, then ``name (probability)`` per class."""

    def __init__(self, stream: TextIO, top: int, width: Optional[int] = None) -> None:
        super().__init__(os.devnull, top)
        self._stream = stream
        self._width = width

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        width = self._width or max(len(row.path) for row in rows)
        self._width = width
        for row in rows:
            classes = "  ".join(f"{name} ({p:.3f})" for name, p in zip(row.names, row.probs))
            self._stream.write(f"{row.path:<{width}}  {classes}\n")
        self._stream.flush()

    def close(self) -> None:
        pass


def read_rows(path: Union[str, os.PathLike]) -> Iterable[Row]:
    """The rows an output file holds (any of the formats), in file order: for tests and tooling."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as file:
            lines = list(csv.reader(file))[1:]
        for line in lines:
            top = (len(line) - 1) // 3
            yield Row(line[0], tuple(int(line[1 + 3 * r]) for r in range(top)),
                      tuple(line[2 + 3 * r] for r in range(top)), tuple(float(line[3 + 3 * r]) for r in range(top)))
        return
    if suffix == ".parquet":
        import pyarrow.parquet as pq
        records = pq.read_table(path).to_pylist()
    else:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in records:
        yield Row(r["path"], tuple(r["ids"]), tuple(r["names"]), tuple(r["probs"]))
