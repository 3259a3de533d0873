"""Rows of a labelled file of the user's: CSV (quoted as the csv module reads it), TSV, JSON
Lines or Parquet, chosen by the file's suffix, each as {column: text} with the 1-based line (or
row) it came from; a missing column or a bad row is a DataError naming the file and row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from encoderzoo.errors import DataError
from encoderzoo.tasks.tsv import TsvRow, read_text

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
           ".ndjson": "jsonl", ".parquet": "parquet"}


def read_records(path: Path, required: Sequence[str], layout: str) -> Iterator[TsvRow]:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use .csv, .tsv, .jsonl or .parquet")
    if kind == "parquet":
        rows, where = _parquet(path), "row"
    elif kind == "jsonl":
        rows, where = _jsonl(path), "line"
    else:
        rows, where = _delimited(path, "," if kind == "csv" else "\t"), "line"
    count = 0
    for line, values in rows:
        missing = [c for c in required if c not in values]
        if missing:
            raise DataError(f"{path}, {where} {line}: no column {', '.join(map(repr, missing))} (found: "
                            f"{', '.join(values)}); expected {layout}")
        count += 1
        yield TsvRow(line=line, values={k: "" if v is None else str(v) for k, v in values.items()})
    if count == 0:
        raise DataError(f"{path}: no data rows; expected {layout}")


def _delimited(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, object]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=delimiter)
    try:
        for values in reader:
            if None in values:  # more fields than the header
                raise DataError(f"{path}, line {reader.line_num}: more fields than the header has; quote "
                                "fields that hold the delimiter")
            if any(v is None for v in values.values()):
                raise DataError(f"{path}, line {reader.line_num}: fewer fields than the header has")
            yield reader.line_num, dict(values)
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: not valid {('CSV', 'TSV')[delimiter == chr(9)]} "
                        f"({err})") from None


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {number}: not valid JSON ({err.msg}); one object per "
                            "line") from None
        if not isinstance(values, dict):
            raise DataError(f"{path}, line {number}: a JSON {type(values).__name__}, expected an object")
        yield number, values


def _parquet(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0][:160]})") from None
    yield from enumerate(table.to_pylist(), start=1)
