"""kill -9 at a random moment of `encoderzoo run demo`, then `--resume`, N times (run by hand;
about a minute per round):

    .venv/bin/python benchmarks/kill_resume.py [--rounds 20] [--limit 240] [--seed 0]

Each round starts a fresh run folder, kills the run with SIGKILL after a random delay drawn over
the length of an uninterrupted run, then resumes it and checks:
  - the outputs hold every row exactly once and equal the uninterrupted run's (predictions
    identical, logits within 1e-4);
  - no process of the killed run is left 10 s after the kill (the graph optimizer child dies
    with it; one still starting up exits as soon as it sees its parent gone; zombies, dead and
    waiting for init to reap them, are not counted);
  - no temporary file is left in the finished run folder, nor beside it.
It prints one line per round and a summary; exit 1 if any round failed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "demo", "--no-bench", "--e2e-runs", "0", "--shard-size", "16", "--batch-size", "8"]


def encoderzoo(*args: str) -> list[str]:
    return [sys.executable, "-m", "encoderzoo", *args]


def outputs(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for path in sorted((folder / "outputs").glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            found[path.stem] = {k: z[k] for k in z.files}
    return found


def descendants(pid: int) -> list[int]:
    """Processes whose parent chain reaches `pid` (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier}
        found += sorted(children)
        frontier = children
    return found


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120].strip()
    except OSError:
        return "?"


def survivors(family: dict[int, str], grace: float = 10.0) -> dict[int, str]:
    """Processes of the killed run still running after `grace` seconds. A child that was still
    starting when its parent died exits by itself once it arms its parent-death signal and sees
    the parent gone; that takes up to a few seconds, and is not an orphan."""
    deadline = time.monotonic() + grace
    while True:
        left = {pid: line for pid, line in family.items() if alive(pid)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def check(reference: dict[str, dict[str, np.ndarray]], found: dict[str, dict[str, np.ndarray]]) -> str | None:
    if set(found) != set(reference):
        return f"outputs {sorted(found)} != {sorted(reference)}"
    for name, arrays in reference.items():
        if list(found[name]["example_ids"]) != list(arrays["example_ids"]):
            return f"{name}: rows missing, repeated or out of order"
        for key, value in arrays.items():
            if key.startswith("output.") and not np.allclose(found[name][key], value, atol=1e-4):
                return f"{name}: {key} differs from the uninterrupted run"
            if key == "output.logits" and (found[name][key].argmax(-1) != value.argmax(-1)).any():
                return f"{name}: predictions differ from the uninterrupted run"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "kill-resume")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    limit = ["--limit", str(args.limit)]

    start = time.perf_counter()
    subprocess.run(encoderzoo(*RUN, *limit, "--out", str(args.work / "whole")), check=True,
                   capture_output=True)
    whole = time.perf_counter() - start
    reference = outputs(args.work / "whole")
    print(f"uninterrupted run: {whole:.1f} s, {len(reference)} backends", flush=True)

    failures = 0
    for round_ in range(1, args.rounds + 1):
        out = args.work / f"run-{round_:02d}"
        delay = rng.uniform(0.5, whole)
        process = subprocess.Popen(encoderzoo(*RUN, *limit, "--out", str(out)), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(delay)
        family = {pid: command_line(pid) for pid in descendants(process.pid)}
        finished = process.poll() is not None
        if not finished:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        orphans = survivors(family)
        resumed = subprocess.run(encoderzoo(*RUN, *limit, "--out", str(out), "--resume"),
                                 capture_output=True, text=True)
        problem = None
        if orphans:
            problem = f"processes outlived the killed run by 10 s: {orphans}"
        elif resumed.returncode != 0:
            problem = f"--resume exited {resumed.returncode}: {resumed.stderr.strip().splitlines()[-1:]}"
        else:
            problem = check(reference, outputs(out))
            stray = [p for p in out.rglob(".*") if p.name != ".encoderzoo"]
            stray += list(args.work.glob(f".{out.name}*"))
            if problem is None and stray:
                problem = f"temporary files left: {[str(p.relative_to(args.work)) for p in stray]}"
        state = "finished before the kill" if finished else f"killed after {delay:.1f} s"
        print(f"round {round_:2d}: {state}: {'ok' if problem is None else 'FAILED: ' + problem}", flush=True)
        failures += problem is not None
        shutil.rmtree(out, ignore_errors=True)
    print(f"\n{args.rounds - failures} of {args.rounds} rounds ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
