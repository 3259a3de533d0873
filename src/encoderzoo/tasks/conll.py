"""CoNLL files and entity-level scoring. Reading: the CoNLL-2003 layout as distributed (one token
per line, token first and tag last, columns split on whitespace, a blank line between sentences,
-DOCSTART- lines between documents). Scoring: entities (chunks) found as conlleval finds them —
its chunk-boundary rules read IOB1, IOB2 and BIOES alike, with S- and E- tags closing a chunk as
seqeval's default mode reads them — or, in strict mode, only the entities the scheme allows
(IOB2: B-X I-X*; BIOES: S-X, or B-X I-X* E-X). Precision, recall and F1 as conlleval prints them
(percentages there, fractions here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from encoderzoo.errors import DataError

DOCSTART = "-DOCSTART-"
PREFIXES = ("B", "I", "E", "S")


@dataclass(frozen=True)
class ConllSentence:
    line: int  # the line number of its first token
    lines: tuple[str, ...]  # the file's lines, as written (conlleval's output echoes them)
    tokens: tuple[str, ...]
    tags: tuple[str, ...]


def split_tag(tag: str) -> tuple[str, str]:
    """("B", "PER") for B-PER; ("O", "") for O."""
    if tag == "O":
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def valid_tag(tag: str) -> bool:
    prefix, kind = split_tag(tag)
    return tag == "O" or (prefix in PREFIXES and bool(kind))


def read_conll(path: Path, *, limit: int | None = None, min_columns: int = 2) -> list[ConllSentence]:
    """The sentences of a CoNLL file; a malformed line raises DataError naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; pass --data PATH to a CoNLL file") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: bytes that are not UTF-8 at byte {err.start}; re-save as UTF-8") from None
    sentences: list[ConllSentence] = []
    current: list[tuple[int, str, list[str]]] = []

    def close() -> None:
        if current:
            sentences.append(ConllSentence(current[0][0], tuple(c[1] for c in current),
                                           tuple(c[2][0] for c in current), tuple(c[2][-1] for c in current)))
            current.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        columns = line.split()
        if not columns:
            close()
            if limit is not None and len(sentences) >= limit:
                return sentences
            continue
        if columns[0] == DOCSTART:
            close()
            continue
        if len(columns) < min_columns:
            raise DataError(f"{path}, line {number}: {len(columns)} column(s); a CoNLL line holds the token "
                            f"first and its tag last, split by spaces or tabs (e.g. 'EU NNP B-NP B-ORG')")
        if not valid_tag(columns[-1]):
            raise DataError(f"{path}, line {number}: tag {columns[-1]!r} is not O or B-/I-/E-/S-TYPE; "
                            "fix the tag (the last column)")
        current.append((number, line.rstrip("\r\n"), columns))
    close()
    if not sentences:
        raise DataError(f"{path}: no sentences; expected a CoNLL file (token ... tag per line, blank lines "
                        "between sentences)")
    return sentences[:limit] if limit is not None else sentences


def detect_scheme(sequences: Sequence[Sequence[str]]) -> str:
    """"bioes" when S- or E- tags occur; "iob1" when an I- tag opens a chunk (after O or
    another type) and B- only separates two chunks of one type; else "iob2"."""
    prefixes = {split_tag(t)[0] for seq in sequences for t in seq}
    if prefixes & {"E", "S"}:
        return "bioes"
    opens_with_i = b_after_other = False
    for seq in sequences:
        previous = ("O", "")
        for tag in seq:
            prefix, kind = split_tag(tag)
            if prefix == "I" and (previous[0] == "O" or previous[1] != kind):
                opens_with_i = True
            if prefix == "B" and (previous[0] == "O" or previous[1] != kind):
                b_after_other = True
            previous = (prefix, kind)
    return "iob1" if opens_with_i and not b_after_other else "iob2"


def _ends(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """conlleval's endOfChunk (a chunk ends before `cur`), with S closing its own chunk."""
    (p, pk), (c, ck) = prev, cur
    if p in ("S", "E"):
        return True
    if p in ("B", "I") and c in ("B", "S", "O"):
        return True
    return p != "O" and pk != ck


def _starts(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """conlleval's startOfChunk (a chunk starts at `cur`), with S opening its own chunk."""
    (p, pk), (c, ck) = prev, cur
    if c in ("B", "S"):
        return True
    if c in ("I", "E") and p in ("O", "E", "S"):
        return True
    return c != "O" and pk != ck


def chunks(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) of each chunk, by conlleval's rules."""
    found, start = set(), None
    previous = ("O", "")
    for i, tag in enumerate([*tags, "O"]):
        current = split_tag(tag)
        if start is not None and _ends(previous, current):
            found.add((previous[1], start, i - 1))
            start = None
        if current[0] != "O" and _starts(previous, current):
            start = i
        previous = current
    return found


def strict_chunks(tags: Sequence[str], scheme: str) -> set[tuple[str, int, int]]:
    """The entities `scheme` allows, nothing else: IOB2 B-X I-X*; BIOES S-X and B-X I-X* E-X.
    Anything else (a chunk opened by I-, an unclosed B- in BIOES) is no entity."""
    if scheme not in ("iob2", "bioes"):
        raise DataError(f"strict entity matching reads IOB2 or BIOES tags; these are {scheme.upper()} "
                        "(score them with the default conlleval rules)")
    found = set()
    parsed = [split_tag(t) for t in tags]
    i = 0
    while i < len(parsed):
        prefix, kind = parsed[i]
        if scheme == "bioes" and prefix == "S":
            found.add((kind, i, i))
        if prefix == "B":
            j = i + 1
            while j < len(parsed) and parsed[j] == ("I", kind):
                j += 1
            if scheme == "iob2":
                found.add((kind, i, j - 1))
                i = j
                continue
            if j < len(parsed) and parsed[j] == ("E", kind):
                found.add((kind, i, j))
                i = j + 1
                continue
            i = j
            continue
        i += 1
    return found


def entity_scores(gold: Sequence[Sequence[str]], found: Sequence[Sequence[str]], *, strict: bool = False,
                  scheme: str | None = None) -> dict[str, dict[str, float]]:
    """{"overall": {...}, TYPE: {...}} with precision, recall, f1 (fractions), the gold count
    ("support") and the predicted count; and the token accuracy overall."""
    scheme = scheme or detect_scheme(gold)
    counts: dict[str, list[int]] = {}  # type: [correct, predicted, gold]

    def of(tags: Sequence[str]) -> set[tuple[str, int, int]]:
        return strict_chunks(tags, scheme) if strict else chunks(tags)

    right = total = 0
    for gold_tags, found_tags in zip(gold, found, strict=True):
        expected, predicted = of(gold_tags), of(found_tags)
        for kind, *_ in expected | predicted:
            counts.setdefault(kind, [0, 0, 0])
        for chunk in predicted:
            counts[chunk[0]][1] += 1
            counts[chunk[0]][0] += chunk in expected
        for chunk in expected:
            counts[chunk[0]][2] += 1
        right += sum(g == f for g, f in zip(gold_tags, found_tags, strict=True))
        total += len(gold_tags)
    overall = [sum(c[i] for c in counts.values()) for i in range(3)]
    result = {"overall": _prf(*overall) | {"accuracy": right / total if total else 0.0}}
    for kind in sorted(counts):
        result[kind] = _prf(*counts[kind])
    return result


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": float(gold),
            "predicted": float(predicted)}
