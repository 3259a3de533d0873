"""GLUE dev files in the layouts the GLUE distribution ships (the real files are not available
offline): tab-separated, unquoted (QQP and MRPC fields hold '"'), CoLA without a header row.
The sentences are real SST-2 dev sentences from ../shared; the labels cycle through the task's."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SST2_DEV


def _sentences() -> list[str]:
    rows = SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t")[0] for row in rows]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def glue_dev(task: str, folder: Path, rows: int = 12) -> Path:
    """`folder/<task>/dev.tsv` with `rows` examples."""
    s = _sentences()
    pair = [(s[2 * i], s[2 * i + 1]) for i in range(rows)]
    path = folder / task / "dev.tsv"
    if task == "cola":  # source, label, original mark, sentence; no header
        return _write(path, [f"gj04\t{i % 2}\t{'' if i % 2 else '*'}\t{s[i]}" for i in range(rows)])
    if task == "mrpc":
        return _write(path, ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [
            f"{i % 2}\t{1000 + i}\t{2000 + i}\t\"{a}\" he said\t{b} \"quoted"
            for i, (a, b) in enumerate(pair)])
    if task == "qqp":
        return _write(path, ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"] + [
            f"{40000 + i}\t{i}\t{rows + i}\tWhat is \"{a}\"?\t{b}?\t{i % 2}"
            for i, (a, b) in enumerate(pair)])
    if task == "qnli":
        labels = ("entailment", "not_entailment")
        return _write(path, ["index\tquestion\tsentence\tlabel"] + [
            f"{i}\tWhy {a}?\t{b}\t{labels[i % 2]}" for i, (a, b) in enumerate(pair)])
    if task == "rte":
        labels = ("entailment", "not_entailment")
        return _write(path, ["index\tsentence1\tsentence2\tlabel"] + [
            f"{i}\t{a}\t{b}\t{labels[i % 2]}" for i, (a, b) in enumerate(pair)])
    if task == "wnli":
        return _write(path, ["index\tsentence1\tsentence2\tlabel"] + [
            f"{i}\t{a}\t{b}\t{i % 2}" for i, (a, b) in enumerate(pair)])
    if task == "stsb":
        header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
        return _write(path, [header] + [
            f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}\t{(i * 0.37) % 5:.3f}"
            for i, (a, b) in enumerate(pair)])
    raise KeyError(task)
