"""What the races share: the project's root, a peer's worker process in its own virtual
environment (built on first use, torch pinned to the CPU build) and the commands that time it,
and the CTranslate2 contender (c2), raced on both task shapes (benchmarks/race.py and
benchmarks/race_embed.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """A peer's worker process in its own virtual environment (built on first use by `build`),
    driven over stdin/stdout: one JSON reply per command, the first one its versions."""

    def __init__(self, venv: Path, script: str, args: list[str], build: Any) -> None:
        python = venv / "bin" / "python"
        if not python.is_file():
            build(venv)
        self.script = f"benchmarks/{script}"
        self.process = subprocess.Popen([str(python), str(ROOT / self.script), *args],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.versions = self._reply()

    def _reply(self) -> dict[str, Any]:
        """The next JSON line; anything else a library printed on stdout is passed over."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                return dict(json.loads(line))
            print(f"[{Path(self.script).stem}] {line.rstrip()}", file=sys.stderr)
        raise RuntimeError(f"the worker stopped; run {self.script} by hand to see why")

    def ask(self, command: str) -> tuple[float, float]:
        """(seconds, accuracy) of one pass the worker times."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n")
        self.process.stdin.flush()
        reply = self._reply()
        return reply["seconds"], reply["accuracy"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=60)


class Way:
    """A contender: one way of running a worker (the command that times a pass)."""

    def __init__(self, worker: Worker, command: str) -> None:
        self.worker, self.command = worker, command

    def run(self, texts: list[str], gold: list[int], batch_size: int) -> tuple[float, float]:
        return self.worker.ask(self.command)


def ctranslate2(args: argparse.Namespace, task: str, texts: Path, seq_len: int, work: Path) -> Worker:
    """(c2): CTranslate2's Encoder with int8 weights, the task's head in numpy (its own venv)."""
    return Worker(args.ctranslate2_venv, "ctranslate2_worker.py",
                  [task, "--model", str(args.embed_model if task == "embed" else args.model), "--texts",
                   str(texts), "--work", str(work), "--batch-size", str(args.batch_size), "--seq-len",
                   str(seq_len), "--threads", str(args.threads)],
                  lambda venv: make_venv(venv, "CTranslate2", ["ctranslate2", "transformers", "safetensors"],
                                          remove=("torchvision",)))


def make_venv(venv: Path, peer: str, packages: list[str], remove: tuple[str, ...] = ()) -> None:
    print(f"building {venv} for {peer} (once): torch==2.13.0, {', '.join(packages)}", flush=True)
    python = str(venv / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [python, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    pin = venv / "constraints.txt"  # a peer's requirement must not swap in another (CUDA) torch
    pin.write_text("torch==2.13.0\n", encoding="utf-8")
    subprocess.run([*pip, "-c", str(pin), *packages], check=True)
    if remove:
        subprocess.run([python, "-m", "pip", "uninstall", "--yes", "--quiet", *remove], check=False)
