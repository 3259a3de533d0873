"""SQuAD JSON as distributed (v1.1; v2.0 with unanswerable questions): the questions, every field
checked against the official layout, every answer found at its answer_start."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.errors import DataError

LAYOUT = "SQuAD v1.1 JSON: {'data': [{'paragraphs': [{'context', 'qas': [{'id', 'question', 'answers'}]}]}]}"


@dataclass(frozen=True)
class QAExample:
    id: str  # the question id
    question: str
    context: str
    answers: tuple[str, ...]  # gold answer texts (several annotators)
    answer_starts: tuple[int, ...]  # character offsets of the answers in the context
    title: str = ""
    split: str = "dev"
    is_impossible: bool = False  # SQuAD 2.0: no answer in the context (answers empty)


def read_squad(path: Path, *, split: str = "dev", limit: int | None = None, unanswerable: bool = False
               ) -> list[QAExample]:
    """The questions of a SQuAD JSON file (v1.1, or 2.0 with `unanswerable`), every field checked."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; pass --data PATH to the SQuAD JSON") from None
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: bytes that are not UTF-8 at byte {err.start}; re-save as UTF-8") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON ({err.msg}); "
                        "is the file truncated?") from None
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise DataError(f"{path}: no 'data' list at the top level; expected {LAYOUT}")
    examples: list[QAExample] = []
    for i, article in enumerate(articles):
        for j, paragraph in enumerate(_field(article, "paragraphs", list, path, f"data[{i}]")):
            where = f"data[{i}].paragraphs[{j}]"
            context = _field(paragraph, "context", str, path, where)
            for k, qa in enumerate(_field(paragraph, "qas", list, path, where)):
                examples.append(_example(qa, context, article.get("title", ""), split,
                                         path, f"{where}.qas[{k}]", unanswerable))
                if limit is not None and len(examples) >= limit:
                    return examples
    if not examples:
        raise DataError(f"{path}: no questions in the file; expected {LAYOUT}")
    return examples


def _example(qa: Any, context: str, title: str, split: str, path: Path, where: str,
             unanswerable: bool) -> QAExample:
    qid = str(_field(qa, "id", (str, int), path, where))
    where = f"question {qid} ({where})"
    question = _field(qa, "question", str, path, where)
    if not question.strip():
        raise DataError(f"{path}: {where} has an empty question; fill it in or remove it")
    answers = _field(qa, "answers", list, path, where)
    impossible = qa.get("is_impossible", False) is True
    if unanswerable and impossible and answers:
        raise DataError(f"{path}: {where} is marked is_impossible but lists {len(answers)} answers; SQuAD "
                        "2.0 keeps those under 'plausible_answers'")
    if not answers and not unanswerable:
        raise DataError(f"{path}: {where} has no answers; SQuAD v1.1 answers every question "
                        "(for a SQuAD 2.0 file, use the squad2 task)")
    texts, starts = [], []
    for a, answer in enumerate(answers):
        text = _field(answer, "text", str, path, f"{where} answer {a}")
        start = _field(answer, "answer_start", int, path, f"{where} answer {a}")
        found = context[start:start + len(text)]
        if found != text:
            raise DataError(f"{path}: {where}: answer {text!r} is not at answer_start {start} of its "
                            f"context (found {found!r}); fix answer_start")
        texts.append(text)
        starts.append(start)
    return QAExample(qid, question, context, tuple(texts), tuple(starts), str(title), split,
                     is_impossible=not answers)


def _field(node: Any, key: str, kind: Any, path: Path, where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise DataError(f"{path}: {where} has no '{key}'; expected {LAYOUT}")
    value = node[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"{path}: {where}: '{key}' is a {type(value).__name__}; expected {LAYOUT}")
    return value
