"""Evaluation throughput on 1, 2 and 3 single-CPU nodes of a local multi-node Ray cluster, in one run, and the
efficiency per added node.

    .venv/bin/python benchmarks/scaling_nodes.py           # --nodes 1,2,3 --rounds 2 --repeats 30 --batch-size 128
    .venv/bin/python benchmarks/scaling_nodes.py --rounds 3 --plot scaling_nodes.png

Builds 164 x 2 x R HumanEval samples (per task: the canonical solution and a wrong-result variant, the pair repeated
R = --repeats times, so each task's samples get distinct sample ids 0..2R-1) and, per round and per cluster size N,
starts a fresh cluster of N nodes with one CPU each (tests/ray_nodes.py: the head plus N-1 worker nodes, each its
own `ray start` raylet on 127.0.0.1) and submits the same job to it, as users do:

    ray job submit --working-dir . -- python jobs/evaluate.py --dataset humaneval --samples FILE --output DIR \\
        execution.workers_per_actor=1 execution.batch_size=K

so the pool holds one execution actor (one sandbox worker) per node. Each cluster first gets an untimed warm-up job
(164 x 2 samples; `--no-warmup` skips it) so that every node has the job's working directory unpacked: otherwise
the head's actor, ready first, takes the early batches while the worker nodes still set up. The sizes alternate
within each round (1, 2, 3, 1, 2, 3, ...) so drift on a noisy machine hits all of them. Measured: the job's
evaluation stage (summary.json `timings_s.evaluate_s`: actor start-up plus every sample through the pool) and its
whole wall time (`wall_time_s`: also reference timing and joining the cluster). The baseline is the 1-node cluster
of the same run.

Printed: a markdown table of every run (samples/s of the evaluation stage and end to end; this host's busy cores
while results arrived, all processes; rows per node: every node must have done work, else raise --repeats), then
per size the mean programs/s, the speedup over 1 node, the efficiency (speedup / nodes) and the gain of the node
added last (its extra programs/s as a fraction of one node's); whether every run's verdicts (passed per
(task_id, sample_id)) are identical, and match the expectation (canonical passes, broken fails). `--plot FILE` also
writes a PNG of throughput and efficiency against nodes (needs matplotlib); `--work DIR` keeps every job's output.

A node's "1 CPU" is only Ray's bookkeeping (one actor of one sandbox worker fits): unpinned, that one worker's
forked programs and helper processes, with the job's driver and `ray job submit` following its log, keep ~1.8 of
this host's 2 cores busy, so a second node has little left to add. So by default (`--no-pin` turns it off) node i
(the head is 0) and every process it starts are pinned to core i mod cores, and this script with its `ray job
submit` clients to the head's core: 1 node = 1 core, and the head's core also carries the driver, GCS, dashboard and
log following in every size (so the head's node runs fewer samples than a worker node).

The standard machine has 2 cores: 3 single-CPU nodes share them (worker2 shares the head's core), so the third node
oversubscribes the host and cannot add a node's throughput; the script prints `os.cpu_count()` and says when the
largest cluster has more nodes than cores. Efficiency at 3 nodes here measures the cost of oversubscription, not
Ray's scaling; on 3+ real cores (or machines) it measures the latter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from raylib.data.problems import load_problems  # noqa: E402
from raylib.data.samples import reference_samples  # noqa: E402
from raylib.files import write_records  # noqa: E402
from tests.ray_nodes import ray_nodes  # noqa: E402

HOST_CORES = sorted(os.sched_getaffinity(0))  # the cores this script may use, before it pins itself


def build_sample_file(path: Path, repeats: int) -> dict[tuple[str, int], bool]:
    """Write the canonical + wrong-result pair of every HumanEval task `repeats` times; returns the expected verdict
    of every (task_id, sample_id) (sample ids count a task's rows in file order, as `read_samples` numbers them)."""
    pairs = reference_samples(load_problems("humaneval"), ("canonical", "wrong-result"))
    rows = pairs * repeats
    expected, seen = {}, {}
    for row in rows:
        sample_id = seen[row["task_id"]] = seen.get(row["task_id"], -1) + 1
        expected[(row["task_id"], sample_id)] = row["variant"] == "canonical"
    write_records(path, rows)
    return expected


def run_on(nodes: int, work: Path, sample_file: Path, batch_size: int, timeout: float,
           warmup_file: Path | None, pin: bool) -> dict:
    """Start a cluster of `nodes` single-CPU nodes (each pinned to one core if `pin`), submit the evaluation job to
    it (after an untimed warm-up job on `warmup_file`, if given), stop the cluster; returns the job's timings, its
    verdicts and the rows each node ran."""
    work.mkdir(parents=True)
    start = time.perf_counter()
    with ray_nodes(work, workers=nodes - 1, cpus_per_node=1) as cluster:
        cluster_s = time.perf_counter() - start
        names = json.loads(cluster.run_driver(NODE_NAMES))
        if pin:
            pin_nodes(cluster)
        warmup = submit(cluster, nodes, warmup_file, work / "warmup", batch_size, timeout) if warmup_file else None
        if pin:
            pin_nodes(cluster)  # processes started since (workers the raylets prestarted) inherit no pin of ours
        start = time.perf_counter()
        with HostLoad(work / "out" / "results.jsonl") as load:
            summary, rows = submit(cluster, nodes, sample_file, work / "out", batch_size, timeout)
        submit_s = time.perf_counter() - start
        start = time.perf_counter()
    stop_s = time.perf_counter() - start
    per_node: dict[str, int] = {}
    for row in rows:
        node = str(row.get("executor", {}).get("node"))
        name = names.get(node, node[:8])  # a node not alive at start-up: its id
        per_node[name] = per_node.get(name, 0) + 1
    return {"nodes": nodes, "evaluate_s": summary["timings_s"]["evaluate_s"], "wall_s": summary["wall_time_s"],
            "timings": summary["timings_s"], "cluster_s": cluster_s, "submit_s": submit_s, "stop_s": stop_s,
            "busy_cores": load.busy_cores(),
            "warmup_evaluate_s": warmup[0]["timings_s"]["evaluate_s"] if warmup else None,
            "verdicts": {(r["task_id"], r["sample_id"]): r["passed"] for r in rows},
            "rows_per_node": dict(sorted(per_node.items(), key=lambda kv: (kv[0] != "head", kv[0])))}


def pin_nodes(cluster) -> None:
    """Pin node i (the head is 0) and every process it started to core i mod cores (processes it starts later
    inherit the pin): a node's "1 CPU" is otherwise only Ray's bookkeeping, and one node's sandbox (forked programs,
    its worker processes) and the job around it spread over every core of the host."""
    import psutil

    cores = HOST_CORES
    for i, node in enumerate([cluster.head, *cluster.workers]):
        try:
            root = psutil.Process(node.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                process.cpu_affinity([cores[i % len(cores)]])


class HostLoad(threading.Thread):
    """This host's busy cores (all processes, from /proc/stat via psutil) while `results` grows: from its first
    batch of rows to its last. On a host with few cores, how close the host already is to full tells how much a node
    more can add; other work on the host counts too."""

    def __init__(self, results: Path):
        super().__init__(daemon=True)
        self.results, self.first, self.last = results, None, None
        self._halt = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._halt.set()
        self.join()

    def run(self) -> None:
        import psutil

        size = 0
        while not self._halt.wait(0.2):
            now = self.results.stat().st_size if self.results.exists() else 0
            if now != size:
                size, mark = now, (time.monotonic(), psutil.cpu_times())
                self.first, self.last = self.first or mark, mark

    def busy_cores(self) -> float | None:
        if not self.first or self.last[0] - self.first[0] < 1:
            return None

        def busy(cpu) -> float:  # not idle, iowait, steal (another VM's), guest (counted in user already)
            return cpu.user + cpu.nice + cpu.system + getattr(cpu, "irq", 0) + getattr(cpu, "softirq", 0)

        return (busy(self.last[1]) - busy(self.first[1])) / (self.last[0] - self.first[0])


# {node id: "head" / "workerN"} of the alive nodes (worker node N holds the custom resource "workerN")
NODE_NAMES = """
import json, ray
ray.init(address="auto")
print("@@" + json.dumps({n["NodeID"]: next((r for r in n["Resources"] if r.startswith("worker")), "head")
                         for n in ray.nodes() if n["Alive"]}))
"""


def submit(cluster, nodes: int, sample_file: Path, output: Path, batch_size: int,
           timeout: float) -> tuple[dict, list[dict]]:
    """`ray job submit` jobs/evaluate.py on `sample_file` (one sandbox worker per actor, so one actor per node);
    returns its summary.json and results.jsonl rows."""
    proc = cluster.submit(["python", "jobs/evaluate.py", "--dataset", "humaneval", "--samples", str(sample_file),
                           "--output", str(output), "execution.workers_per_actor=1",
                           f"execution.batch_size={batch_size}"], timeout=timeout)
    if proc.returncode != 0 or "succeeded" not in proc.stdout + proc.stderr:
        log = output / "job.log"
        raise SystemExit(f"the job on {nodes} node(s) failed (exit {proc.returncode}):\n"
                         f"{(proc.stdout + proc.stderr)[-3000:]}\n{log}:\n"
                         f"{log.read_text()[-3000:] if log.exists() else '(none)'}")
    rows = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    return json.loads((output / "summary.json").read_text()), rows


def plot(path: str, sizes: list[int], throughput: dict[int, float], efficiency: dict[int, float], cores: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(sizes, [throughput[n] for n in sizes], "o-", label="measured")
    left.plot(sizes, [throughput[sizes[0]] * n / sizes[0] for n in sizes], "--", color="gray", label="linear")
    left.set(xlabel="nodes (1 CPU each)", ylabel="programs/s (evaluation stage)", xticks=sizes)
    right.plot(sizes, [efficiency[n] for n in sizes], "o-")
    right.axhline(1.0, ls="--", color="gray")
    right.set(xlabel="nodes (1 CPU each)", ylabel="efficiency (speedup / nodes)", xticks=sizes, ylim=(0, 1.1))
    for ax in (left, right):
        if max(sizes) > cores:
            ax.axvline(cores + 0.5, color="red", lw=0.8, ls=":", label=f"more nodes than the {cores} cores")
    left.legend()
    fig.suptitle(f"jobs/evaluate.py on a local multi-node Ray cluster ({cores} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,2,3", help="cluster sizes, comma-separated; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each size (sizes alternate within a round)")
    parser.add_argument("--repeats", type=int, default=30, help="repeats of the 164 x 2 samples (30 -> 9,840)")
    parser.add_argument("--batch-size", type=int, default=128, help="execution.batch_size (samples per actor call)")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="submit an untimed job (164 x 2 samples) to each cluster first, so every node has the "
                             "job's working directory unpacked before the timed job")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="pin node i (head: 0) to core i mod cores, and this script and its `ray job submit` "
                             "to the head's core, so that a 1-CPU node uses one core; --no-pin: Ray's logical CPUs "
                             "only (one node's sandbox then spreads over every core)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one job may take")
    parser.add_argument("--plot", help="write a PNG of throughput and efficiency against nodes (needs matplotlib)")
    parser.add_argument("--work", help="working directory, kept: samples, each job's output (default: a temporary "
                                       "one, removed)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.nodes.split(",")]
    if args.work and Path(args.work).exists() and any(Path(args.work).iterdir()):
        parser.error(f"--work {args.work} is not empty (a job re-run into its output would resume, not re-time)")

    cores = len(HOST_CORES)
    if args.pin:
        os.sched_setaffinity(0, HOST_CORES[:1])  # with it, the `ray job submit` clients (they follow the job's log)
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = Path(args.work) if args.work else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        sample_file = work / "samples.jsonl"
        expected = build_sample_file(sample_file, args.repeats)
        warmup_file = work / "warmup.jsonl" if args.warmup else None
        if warmup_file:
            build_sample_file(warmup_file, 1)
        n = len(expected)
        print(f"{n} samples (164 HumanEval tasks x {2 * args.repeats}: canonical and wrong-result), nodes {sizes} of "
              f"1 CPU each, {args.rounds} round(s), execution.batch_size={args.batch_size}", flush=True)
        pins = ", ".join(f"{'head' if i == 0 else f'worker{i}'} -> core {HOST_CORES[i % len(HOST_CORES)]}"
                         for i in range(max(sizes)))
        print(f"os.cpu_count() = {os.cpu_count()} ({cores} usable here); load average {os.getloadavg()[0]:.2f}; "
              + (f"pinned: {pins} (this script and its `ray job submit` on the head's core)" if args.pin
                 else "not pinned (--no-pin)")
              + (f"; {max(sizes)} single-CPU nodes oversubscribe this host's {cores} cores" if max(sizes) > cores
                 else ""), flush=True)

        runs = []
        for round_ in range(1, args.rounds + 1):
            for nodes in sizes:
                run = run_on(nodes, work / f"n{nodes}-r{round_}", sample_file, args.batch_size, args.timeout,
                             warmup_file, args.pin)
                run["round"] = round_
                runs.append(run)
                print(f"  {nodes} node(s), round {round_}: evaluate {run['evaluate_s']:.1f} s "
                      f"({n / run['evaluate_s']:.1f} programs/s), job wall {run['wall_s']:.1f} s, cluster start "
                      f"{run['cluster_s']:.1f} s, submit {run['submit_s']:.1f} s, stop {run['stop_s']:.1f} s, "
                      f"stages {run['timings']}, rows per node {run['rows_per_node']}"
                      + (f", warm-up job's evaluate {run['warmup_evaluate_s']:.1f} s" if args.warmup else ""),
                      flush=True)

    print("\n| nodes | round | evaluate s | programs/s (evaluation stage) | job wall s | programs/s end to end "
          f"| host cores busy (of {cores}) | rows per node |")
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        spread = ", ".join(f"{name} {count}" for name, count in run["rows_per_node"].items())
        print(f"| {run['nodes']} | {run['round']} | {run['evaluate_s']:.1f} | {n / run['evaluate_s']:.1f} "
              f"| {run['wall_s']:.1f} | {n / run['wall_s']:.1f} "
              f"| {'-' if run['busy_cores'] is None else format(run['busy_cores'], '.2f')} | {spread} |")

    throughput = {s: statistics.mean(n / r["evaluate_s"] for r in runs if r["nodes"] == s) for s in sizes}
    base = sizes[0]
    speedup = {s: throughput[s] / throughput[base] for s in sizes}
    efficiency = {s: speedup[s] * base / s for s in sizes}
    print(f"\n| nodes | programs/s (mean of {args.rounds}) | speedup vs {base} node(s) | efficiency (speedup / nodes) "
          "| gain of the added node(s) (x one node) |")
    print("|---|---|---|---|---|")
    for i, s in enumerate(sizes):
        spread = [n / r["evaluate_s"] for r in runs if r["nodes"] == s]
        gain = ("-" if i == 0 else
                f"{(throughput[s] - throughput[sizes[i - 1]]) / (throughput[base] / base) / (s - sizes[i - 1]):.2f}")
        print(f"| {s}{' (oversubscribed)' if s > cores else ''} | {throughput[s]:.1f} "
              f"({min(spread):.1f}-{max(spread):.1f}) | {speedup[s]:.2f}x | {efficiency[s]:.2f} | {gain} |")

    first = runs[0]["verdicts"]
    differ = [sum(r["verdicts"].get(k) != v for k, v in first.items()) + abs(len(r["verdicts"]) - len(first))
              for r in runs]
    wrong = sum(first.get(k) != v for k, v in expected.items())
    print(f"\nverdicts identical across all {len(runs)} runs: {'yes' if not any(differ) else 'NO'} "
          f"(samples differing from the first run, per run: {differ}); canonical pass and broken fail: "
          f"{'yes' if not wrong else 'NO'} ({wrong} of {n} not as expected)")
    idle = [r["nodes"] for r in runs if len(r["rows_per_node"]) < r["nodes"]]
    if idle:
        print(f"WARNING: some nodes ran no samples in the runs on {idle} node(s): too few samples (the actors ready "
              "first took every batch before the others started) - raise --repeats")
    if args.plot:
        try:
            plot(args.plot, sizes, throughput, efficiency, cores)
            print(f"plot: {args.plot}")
        except ImportError:
            print("no plot: matplotlib is not installed")
    print(f"benchmark wall time: {(time.perf_counter() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
