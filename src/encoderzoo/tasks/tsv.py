"""Reading tab-separated files as GLUE distributes them, with errors that name file and row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from encoderzoo.errors import DataError


@dataclass(frozen=True)
class TsvRow:
    line: int  # 1-based line number in the file (the header is line 1)
    values: dict[str, str]


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; pass --data PATH to the dataset file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder; pass --data PATH to the dataset file") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: bytes that are not UTF-8 ({data[err.start:err.start + 4]!r}); "
            "re-save the file as UTF-8"
        ) from None


def read_tsv(path: Path, required: Sequence[str], layout: str,
             columns: Sequence[str] | None = None) -> Iterator[TsvRow]:
    """Rows of a headed TSV file as {column: value}; `layout` describes the expected header. A
    file without a header (GLUE's CoLA) is read with the given `columns`. Fields are split on
    tabs only: GLUE files are not quoted (QQP and MRPC have '"' inside fields)."""
    text = read_text(path)
    lines = text.split("\n")
    if not text.strip():
        raise DataError(f"{path}: the file is empty; expected {layout}")
    if columns is not None:
        lines = ["\t".join(columns), *lines]  # numbered from 2 below: shift back to the file's lines
    header = [name.strip() for name in lines[0].rstrip("\r").split("\t")]
    missing = [name for name in required if name not in header]
    if missing:
        raise DataError(
            f"{path}, line 1: no column {', '.join(repr(m) for m in missing)} in the header "
            f"(found: {', '.join(header)}); expected {layout}"
        )
    rows = 0
    first = 1 if columns is not None else 2
    for number, raw in enumerate(lines[1:], start=first):
        raw = raw.rstrip("\r")
        if not raw.strip():
            if any(rest.strip() for rest in lines[number + 2 - first:]):
                raise DataError(f"{path}, line {number}: empty line inside the data; remove it")
            break
        fields = raw.split("\t")
        if len(fields) != len(header):
            raise DataError(
                f"{path}, line {number}: {len(fields)} tab-separated fields, the "
                f"{'header' if columns is None else 'layout'} has {len(header)}; check for a stray or "
                "missing tab on that line"
            )
        rows += 1
        yield TsvRow(line=number, values=dict(zip(header, fields, strict=True)))
    if rows == 0:
        raise DataError(f"{path}: a header but no data rows; expected {layout}")
