"""Online scoring through Ray Serve vs the same verifier called in-process, on the same requests, in one run.

    .venv/bin/python benchmarks/serve_rerank.py                       # 2,000 public-tests and 240 orm requests
    .venv/bin/python benchmarks/serve_rerank.py --quick               # smoke run: 200 and 48
    .venv/bin/python benchmarks/serve_rerank.py --clients 32 --requests 2000 --output runs/bench_serve

A request is one HumanEval problem (in order, round robin) and --candidates candidates (8): its reference solution
and three broken variants (wrong result, exception, syntax error), repeated, as completions of the prompt. One
local Ray cluster and one Serve instance on 127.0.0.1 are started first (not timed); the verifier app runs as in
configs/serve.yaml (one Verifier replica with 2 sandbox workers; the reward model in its own Scorer-orm replica,
2 CPUs).

For each verifier (public-tests; orm: the packaged all-MiniLM-L6-v2 with a fresh one-label head, max_length 512):
  in-process  the same verifier class in this process, same settings (sandbox workers / torch threads = 2), one
              `verifier.score` call per request, one after another (measured here: as fast as calls from 6
              threads, and 1.2x calls of 16 requests at once): its rate and its latencies.
  serve       POST /verify/score over HTTP (aiohttp, keep-alive connections): throughput with --clients
              concurrent clients; latency with one client, one request after another.
Serve's added latency = the median over the first --latency-requests requests of (latency through Serve, one
client - latency in-process), paired per request. For orm also:
`@serve.batch` off (the same app redeployed with batching.enabled=false) vs on, at --clients. Every answer is
checked: 200 and one score per candidate equal to the in-process score (public-tests exactly; orm within 1e-4).
Targets: throughput serve / in-process >= 0.8; added latency p50 <= 10 ms.
Prints a markdown table for BENCHMARKS.md; with --output, writes it and every number to DIR/serve_rerank.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.rerank_throughput import build_reward_model  # noqa: E402
from raylib.data.problems import load_problems  # noqa: E402
from raylib.data.samples import reference_samples  # noqa: E402

VARIANTS = ("canonical", "wrong-result", "exception", "syntax-error")
THREADS = 2  # sandbox workers and torch threads, on both sides
# --grpc-proxy: the proxy calls replicas over gRPC instead of Ray actor calls, and replicas run user code and their
# handles' router on their main event loop (no thread hops); configs/serve.yaml's header gives them to `serve run`.
SERVE_FLAGS = {"RAY_SERVE_PROXY_USE_GRPC": "1", "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
               "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"}


def make_requests(count: int, copies: int = 2) -> tuple[dict, list[tuple[str, list[str]]]]:
    """`count` (task_id, 4 x `copies` completions) requests over the HumanEval problems, round robin."""
    problems = load_problems("humaneval")
    by_task: dict[str, list[str]] = {}
    for row in reference_samples(problems, VARIANTS):
        by_task.setdefault(row["task_id"], []).append(row.get("completion", row.get("solution")))
    tasks = [t for t in problems if len(by_task.get(t, ())) == len(VARIANTS)]
    return problems, [(tasks[i % len(tasks)], by_task[tasks[i % len(tasks)]] * copies) for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def stats(latencies: list[float], seconds: float) -> dict:
    """Rate and latency percentiles; `latencies_ms` keeps each request's, in request order (for paired differences)."""
    return {"requests": len(latencies), "seconds": round(seconds, 3), "rps": round(len(latencies) / seconds, 2),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2), "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "latencies_ms": [round(t * 1000, 3) for t in latencies]}


def added_latency(served: dict, local: dict) -> float:
    """Serve's added latency: the median over requests of (its latency through Serve - its latency in-process), on
    the same requests (pairing removes the spread between short and long requests)."""
    pairs = zip(served["latencies_ms"], local["latencies_ms"])  # served covers the first --latency-requests
    return round(percentile([a - b for a, b in pairs], 50), 2)


# ------------------------------------------------------------------------------------------------- in-process


def in_process(name: str, settings, problems: dict, requests: list) -> tuple[dict, list]:
    """The verifier built in this process, one `score` call per request, one after another (measured: as fast as
    calls from 6 threads, and faster than calls of 16 requests at once); returns (stats, each request's scores)."""
    from raylib.rerank.base import Candidates
    from raylib.rerank.online import candidate_program
    from raylib.rerank.verifiers import make_verifier

    verifier = make_verifier(name, settings)
    items = [Candidates(problems[t], [candidate_program(problems[t], c) for c in cands]) for t, cands in requests]
    try:
        verifier.score(items[:1])  # warm-up: lazy imports, first sandbox fork, first forward pass
        scores, latencies = [], []
        started = time.perf_counter()
        for item in items:
            begun = time.perf_counter()
            scores += verifier.score([item])
            latencies.append(time.perf_counter() - begun)
        return stats(latencies, time.perf_counter() - started), scores
    finally:
        verifier.close()


# ------------------------------------------------------------------------------------------------- over HTTP


def over_http(url: str, name: str, requests: list, clients: int) -> tuple[dict, list]:
    """POST /verify/score for every request with `clients` concurrent clients (asyncio, aiohttp, keep-alive
    connections); (stats, [[value, ...], ...]) in request order."""
    import asyncio

    import aiohttp

    async def run() -> tuple[dict, list]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients),
                                         timeout=aiohttp.ClientTimeout(total=600)) as session:
            async def call(request):
                task, candidates = request
                begun = time.perf_counter()
                body = {"problem": {"dataset": "humaneval", "task_id": task}, "candidates": candidates,
                        "verifier": name}
                async with session.post(url + "/verify/score", json=body) as answer:
                    text = await answer.text()
                took = time.perf_counter() - begun
                if answer.status != 200:
                    raise RuntimeError(f"{answer.status}: {text[:300]}")
                return took, [s["value"] for s in json.loads(text)["scores"][name]]

            async def load(batch):
                queue = list(enumerate(batch))
                out = [None] * len(batch)

                async def client():
                    while queue:
                        i, request = queue.pop(0)
                        out[i] = await call(request)

                await asyncio.gather(*(client() for _ in range(clients)))
                return out

            await load(requests[:clients])  # warm-up: connections, replicas' first calls
            started = time.perf_counter()
            results = await load(requests)
            seconds = time.perf_counter() - started
            return stats([t for t, _ in results], seconds), [values for _, values in results]

    return asyncio.run(run())


def check_same(name: str, served: list, local: list, tolerance: float) -> float:
    """The largest difference between the scores over HTTP and in-process (raises past `tolerance`)."""
    worst = 0.0
    for values, scores in zip(served, local, strict=True):
        for value, score in zip(values, scores, strict=True):
            if (value is None) != (score.value is None):
                raise AssertionError(f"{name}: {value} over HTTP, {score.value} in-process")
            if value is not None:
                worst = max(worst, abs(value - score.value))
    if worst > tolerance:
        raise AssertionError(f"{name}: scores over HTTP differ from in-process by {worst}")
    return worst


def deploy(orm: Path, batching: bool, port: int) -> str:
    from ray import serve

    from serve import verifier

    args = verifier.VerifierArgs(
        verifiers={"public_tests": {"workers_per_actor": THREADS},
                   "reward_model": {"model": str(orm), "max_length": 512, "batch_size": 16,
                                    "cpus_per_actor": THREADS}},
        batching={"enabled": batching, "max_batch_size": 16, "wait_ms": 0})
    serve.run(verifier.build_app(args), name="verifier", route_prefix="/verify")
    return f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="public-tests requests")
    parser.add_argument("--orm-requests", type=int, default=240, help="orm requests (a forward pass is costlier)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--latency-requests", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=8, choices=(4, 8, 16, 32, 64),
                        help="candidates per request (the 4 variants, repeated)")
    parser.add_argument("--only", choices=("public-tests", "orm"), help="measure one verifier")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--grpc-proxy", action="store_true", help="Serve with SERVE_FLAGS (default: Serve's defaults, "
                        "as configs/serve.yaml runs)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.orm_requests, args.latency_requests = 200, 48, 48

    import ray
    import torch
    from ray import serve

    from raylib.rerank.settings import VerifierSettings

    torch.set_num_threads(THREADS)
    os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")
    if args.grpc_proxy:  # see configs/serve.yaml: read by the controller, proxy and replicas, which inherit this env
        for flag, value in SERVE_FLAGS.items():
            os.environ.setdefault(flag, value)
    workdir = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    orm = build_reward_model(workdir / "orm")
    problems, requests = make_requests(max(args.requests, args.orm_requests), args.candidates // len(VARIANTS))
    settings = VerifierSettings(public_tests={"workers_per_actor": THREADS},
                                reward_model={"model": str(orm), "max_length": 512, "batch_size": 16})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port, "request_timeout_s": 600})
    results: dict = {"machine": f"{os.cpu_count()} cores, {platform.python_version()}, torch {torch.__version__}",
                     "clients": args.clients, "candidates_per_request": args.candidates,
                     "serve_flags": SERVE_FLAGS if args.grpc_proxy else "Serve's defaults"}
    try:
        url = deploy(orm, True, port)
        for name, count, tolerance in (("public-tests", args.requests, 0.0), ("orm", args.orm_requests, 1e-4)):
            if args.only not in (None, name):
                continue
            chosen = requests[:count]
            print(f"{name}: in-process, {count} requests ...", file=sys.stderr, flush=True)
            local, scores = in_process(name, settings, problems, chosen)
            print(f"{name}: serve, {args.clients} clients ...", file=sys.stderr, flush=True)
            served, values = over_http(url, name, chosen, args.clients)
            diff = check_same(name, values, scores, tolerance)
            latency, _ = over_http(url, name, chosen[:args.latency_requests], 1)
            results[name] = {"in_process": local, "serve": served,
                             "serve_latency": latency, "max_abs_diff": diff,
                             "throughput_ratio": round(served["rps"] / local["rps"], 3),
                             "added_p50_ms": added_latency(latency, local)}
        if "orm" in results:
            print("orm: serve with @serve.batch off ...", file=sys.stderr, flush=True)
            deploy(orm, False, port)
            unbatched, values = over_http(url, "orm", requests[:args.orm_requests], args.clients)
            check_same("orm", values, scores, 1e-4)
            results["orm"]["serve_unbatched"] = unbatched
            results["orm"]["batch_on_vs_off"] = round(results["orm"]["serve"]["rps"] / unbatched["rps"], 3)
    finally:
        serve.shutdown()
        ray.shutdown()
    table = markdown(results)
    print(table)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "serve_rerank.md").write_text(table)
        (args.output / "serve_rerank.json").write_text(json.dumps(results, indent=2))


def markdown(r: dict) -> str:
    lines = [f"{r['machine']}; {r['clients']} clients; {r['candidates_per_request']} candidates per request; "
             f"Serve: {r['serve_flags']}", "",
             "| verifier | requests | in-process req/s | serve req/s | ratio (>= 0.8) | in-process p50 / p99 ms | "
             "serve p50 / p99 ms (1 client) | added ms, median of pairs (<= 10) | serve p50 / p99 ms (loaded) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in [n for n in ("public-tests", "orm") if n in r]:
        v = r[name]
        lines.append(f"| {name} | {v['serve']['requests']} | {v['in_process']['rps']} | {v['serve']['rps']} | "
                     f"**{v['throughput_ratio']}** | {v['in_process']['p50_ms']} / "
                     f"{v['in_process']['p99_ms']} | {v['serve_latency']['p50_ms']} / "
                     f"{v['serve_latency']['p99_ms']} | **{v['added_p50_ms']}** | {v['serve']['p50_ms']} / "
                     f"{v['serve']['p99_ms']} |")
    if "orm" not in r:
        return "\n".join(lines) + "\n"
    orm = r["orm"]
    lines += ["", f"orm `@serve.batch` on: {orm['serve']['rps']} req/s, off: {orm['serve_unbatched']['rps']} req/s "
              f"(on / off = {orm['batch_on_vs_off']}); loaded p50 on {orm['serve']['p50_ms']} ms, off "
              f"{orm['serve_unbatched']['p50_ms']} ms"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
