"""EvalPlus agreement: codeloop's HumanEval+/MBPP+ verdicts vs EvalPlus 0.3.1's, sample by sample.

    .venv/bin/python benchmarks/evalplus_agreement.py --canonical
    .venv/bin/python benchmarks/evalplus_agreement.py --humaneval HE_SAMPLES.jsonl --mbpp MBPP_SAMPLES.jsonl \
        [--evalplus-python /tmp/evalplus-venv/bin/python] [--workers 2] [--output runs/evalplus_agreement]

Evaluates the same sample files (EvalPlus format: rows with `task_id` and `solution`, a whole program, or
`completion`, appended to the prompt) on the official HumanEval+ v0.1.10 / MBPP+ v0.2.0 releases shipped in
raylib/data/evalplus/, two ways, one after the other:

  1. EvalPlus 0.3.1 itself, `python -m evalplus.evaluate --dataset humaneval|mbpp --samples FILE --parallel 2` (base
     and plus tests), in its own venv (`--evalplus-python`; create it with
     `python3.11 -m venv DIR && DIR/bin/pip install evalplus==0.3.1`), offline: HUMANEVAL_OVERRIDE_PATH /
     MBPP_OVERRIDE_PATH point at uncompressed copies of the shipped files, XDG_CACHE_HOME at a scratch directory (its
     expected outputs are computed in the run; `--evalplus-cache DIR` keeps and reuses them), HF_HUB_OFFLINE=1, and
     no network at all (`unshare -rn`) where the host allows it. Verdicts: base_status / plus_status of each sample
     in its `_eval_results.json`;
  2. codeloop's sandbox directly (no Ray): `Sandbox(SandboxConfig(workers=2)).run_batch` over
     `build_request(problem, program, 10.0, 4096)` (call tests get EvalPlus's per-call limits, memory 4 GiB as in
     EvalPlus). A sample passes plus when `result.passed`; its base verdict is the test named "base".

Per sample it compares the base verdicts (EvalPlus base_status == "pass") and the plus verdicts (EvalPlus
base_status == plus_status == "pass"), and prints the samples compared per dataset, the agreement counts, every
disagreement (task, sample index, EvalPlus statuses, codeloop status and first error), and both sides' wall times.
Disagreements with a known, explained cause are listed apart from the unexplained ones:
  HumanEval/32  evalplus 0.3.1's find_zero oracle `continue`s before marking an input passed: every sample fails;
  Mbpp/255 plus EvalPlus's child runs out of its 4 GiB RLIMIT_AS (inherited from a parent holding ~800 MB of
                expected outputs) on the largest inputs.
The samples of the other disagreements are evaluated a second time, both sides (`--no-recheck`: not): those the
re-run agrees on are counted as flaky (a per-call time limit of max(1 s, 4x the reference's time) met or missed
under load), the rest as unexplained.
`--canonical` builds the sample files instead: per task (all 164 + 378) the canonical solution, `return None`,
`raise ValueError`, and an off-by-one variant (int/float answers + 1) where the canonical is not recursive.
Writes OUTPUT/report.json (counts, wall times, every disagreement with its program), OUTPUT/samples.jsonl (both
sides' verdicts per sample) and EvalPlus's own results and logs under OUTPUT/evalplus/. Exit status 2: the EvalPlus
venv is missing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from raylib.data.problems import SHIPPED_FILES, load_problems
from raylib.data.samples import read_samples
from raylib.evaluate.requests import build_request

EVALPLUS_VERSION = "0.3.1"
DATASETS = {  # our name -> (codeloop dataset, evalplus dataset, override variable, shipped release)
    "humaneval": ("humaneval+", "humaneval", "HUMANEVAL_OVERRIDE_PATH", SHIPPED_FILES["humaneval+"]),
    "mbpp": ("mbpp+", "mbpp", "MBPP_OVERRIDE_PATH", SHIPPED_FILES["mbpp+"]),
}
KNOWN = {
    "evalplus-find_zero-bug": "evalplus 0.3.1: the find_zero oracle `continue`s before marking the input passed, so "
                              "HumanEval/32 fails for every sample",
    "evalplus-rlimit-as": "evalplus: Mbpp/255's plus inputs exhaust the 4 GiB RLIMIT_AS its child inherits from a "
                          "parent holding the expected outputs",
}
CALL_LIMIT_S, MEMORY_MB = 10.0, 4096
ERROR_CHARS = 150


# ------------------------------------------------------------------------------------------------- sample files


def _rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _off_by_one(row: dict) -> str | None:
    """The canonical program with its entry point wrapped so int/float answers come back one too high; None when
    the canonical calls its entry point itself (recursion would compound the change)."""
    entry, canonical = row["entry_point"], row["canonical_solution"]
    if (len(re.findall(rf"\b{re.escape(entry)}\b", canonical))
            != len(re.findall(rf"\bdef {re.escape(entry)}\b", canonical))):
        return None
    return (f"{row['prompt']}{canonical}\n\n_agreement_original = {entry}\n\n\ndef {entry}(*args, **kwargs):\n"
            f"    out = _agreement_original(*args, **kwargs)\n"
            f"    return out + 1 if type(out) in (int, float) else out\n")


def canonical_samples(dataset: str, limit: int | None) -> list[dict]:
    """Per task: the canonical solution and broken variants (rows carry a `variant` field, ignored by both sides)."""
    rows = _rows(DATASETS[dataset][3])[:limit]
    samples = []
    for row in rows:
        task_id, entry, program = row["task_id"], row["entry_point"], row["prompt"] + row["canonical_solution"]
        if dataset == "humaneval":  # completion rows, appended to the prompt (the openai harness's format)
            samples.append({"task_id": task_id, "completion": row["canonical_solution"], "variant": "canonical"})
            samples.append({"task_id": task_id, "completion": "    return None\n", "variant": "return-none"})
            samples.append({"task_id": task_id, "completion": "    raise ValueError('broken on purpose')\n",
                            "variant": "raise"})
        else:  # whole programs (MBPP+ prompts are a docstring only): the entry point redefined after the canonical
            samples.append({"task_id": task_id, "solution": program, "variant": "canonical"})
            for variant, body in (("return-none", "return None"), ("raise", "raise ValueError('broken on purpose')")):
                samples.append({"task_id": task_id, "variant": variant,
                                "solution": f"{program}\n\ndef {entry}(*args, **kwargs):\n    {body}\n"})
        wrong = _off_by_one(row)
        if wrong is not None:
            samples.append({"task_id": task_id, "solution": wrong, "variant": "off-by-one"})
    return samples


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


# ------------------------------------------------------------------------------------------------- EvalPlus side


def check_evalplus(python: str) -> str:
    """The EvalPlus venv's version line; exits 2 with how to make the venv when it is missing or wrong."""
    how = (f"create it with:  python3.11 -m venv DIR && DIR/bin/pip install evalplus=={EVALPLUS_VERSION}\n"
           f"then pass --evalplus-python DIR/bin/python")
    if not Path(python).exists():
        print(f"error: no EvalPlus python at {python}\n{how}", file=sys.stderr)
        sys.exit(2)
    probe = subprocess.run([python, "-c", "import evalplus; print(evalplus.__version__)"],
                           capture_output=True, text=True, check=False)
    version = probe.stdout.strip()
    if probe.returncode != 0 or version != EVALPLUS_VERSION:
        print(f"error: {python} does not have evalplus {EVALPLUS_VERSION} "
              f"(got {version or probe.stderr.strip()[-300:]})\n{how}", file=sys.stderr)
        sys.exit(2)
    return version


def _no_network_prefix() -> list[str]:
    """`unshare -rn` (a user and network namespace: no network at all) when this host allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-rn"]
    return []


def run_evalplus(dataset: str, samples: list[dict], python: str, work: Path, cache: Path,
                 out_dir: Path) -> tuple[dict, float, dict]:
    """Run `evalplus.evaluate` on `samples`; ({task_id: [result per sample, in file order]}, wall s, run info)."""
    _, ep_dataset, override_var, shipped = DATASETS[dataset]
    work.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = {row["task_id"] for row in samples}
    release = _rows(shipped)
    subset = [row for row in release if row["task_id"] in tasks]
    # evaluate() insists every dataset task has a sample: a partial sample file gets a dataset of its tasks only.
    data_file = work / (shipped.name.removesuffix(".gz") if len(subset) == len(release)
                        else f"{ep_dataset}_subset.jsonl")
    write_jsonl(data_file, subset)
    sample_file = work / f"{ep_dataset}_samples.jsonl"
    write_jsonl(sample_file, samples)
    results_file = work / f"{ep_dataset}_samples_eval_results.json"
    results_file.unlink(missing_ok=True)  # evaluate() would load an old one instead of running
    env = {k: v for k, v in os.environ.items()
           if k not in ("EVALPLUS_TIMEOUT_PER_TASK", "EVALPLUS_MAX_MEMORY_BYTES", "PYTHONPATH")}
    env.update({override_var: str(data_file), "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    prefix = _no_network_prefix()
    command = [*prefix, python, "-m", "evalplus.evaluate", "--dataset", ep_dataset, "--samples", str(sample_file),
               "--parallel", "2"]
    log = out_dir / f"{ep_dataset}.log"
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(command, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not results_file.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"evalplus failed (exit {proc.returncode}); log {log}:\n{tail}")
    shutil.copy(results_file, out_dir / results_file.name)
    found = re.search(r"Expected outputs computed in ([\d.]+)s", log.read_text(errors="replace"))
    results = json.loads(results_file.read_text())["eval"]
    info = {"command": " ".join(command), "data_file": str(data_file), "subset": len(subset) != len(release),
            "no_network": bool(prefix),
            "expected_outputs_s": float(found.group(1)) if found else None, "log": str(log),
            "results": str(out_dir / results_file.name)}
    return results, wall, info


# ------------------------------------------------------------------------------------------------- codeloop side


def run_codeloop(dataset: str, sample_file: Path, workers: int) -> tuple[list, list, float, dict]:
    """Evaluate `sample_file` with the sandbox; (samples, results, wall s of the whole side, info)."""
    from sandbox import Sandbox, SandboxConfig
    from sandbox.schema import ExecResult

    start = time.perf_counter()
    problems = load_problems(DATASETS[dataset][0])
    samples, _ = read_samples(sample_file, problems)
    # As jobs/evaluate.py: an empty program (or a generation error) is not run, and fails.
    runnable = [s for s in samples if s.program.strip() and not s.generation_error]
    requests = [build_request(problems[s.task_id], s.program, CALL_LIMIT_S, MEMORY_MB) for s in runnable]
    with Sandbox(SandboxConfig(workers=workers)) as box:
        ready = time.perf_counter()
        ran = dict(zip(map(id, runnable), box.run_batch(requests)))
        run_s = time.perf_counter() - ready
        isolation = box.isolation
    wall = time.perf_counter() - start
    results = [ran.get(id(s)) or ExecResult(status="generation-error" if s.generation_error else "failed", passed=False,
                                            error=s.generation_error or "the program is empty") for s in samples]
    return samples, results, wall, {"isolation": isolation, "run_batch_s": round(run_s, 2), "workers": workers}


# ------------------------------------------------------------------------------------------------- comparison


def known_cause(task_id: str, which: str, evalplus_ok: bool, codeloop_ok: bool) -> str:
    if evalplus_ok or not codeloop_ok:
        return ""
    if task_id == "HumanEval/32":
        return "evalplus-find_zero-bug"
    if task_id == "Mbpp/255" and which == "plus":
        return "evalplus-rlimit-as"
    return ""


def rows_by_key(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """{(task_id, index of the sample among its task's rows): row}: how both sides number a task's samples."""
    keyed, seen = {}, {}
    for row in rows:
        index = seen[row["task_id"]] = seen.get(row["task_id"], -1) + 1
        keyed[(row["task_id"], index)] = row
    return keyed


def compare(dataset: str, rows: list[dict], ep: dict, samples: list, results: list) -> dict:
    """Per-sample verdicts of both sides, agreement counts and the disagreements."""
    per_sample, disagreements = [], []
    counts = {"samples": 0, "base_agree": 0, "plus_agree": 0, "base_known": 0, "plus_known": 0, "base_flaky": 0,
              "plus_flaky": 0, "base_unexplained": 0, "plus_unexplained": 0, "evalplus_base_pass": 0,
              "evalplus_plus_pass": 0, "codeloop_base_pass": 0, "codeloop_plus_pass": 0, "solution_text_differs": 0}
    variants = {key: row.get("variant", "") for key, row in rows_by_key(rows).items()}
    for sample, result in zip(samples, results):
        mine = ep.get(sample.task_id, [])
        if sample.sample_id >= len(mine):
            raise SystemExit(f"{sample.task_id} sample {sample.sample_id}: missing from EvalPlus's results")
        theirs = mine[sample.sample_id]
        counts["solution_text_differs"] += theirs["solution"] != sample.program
        ep_base = theirs["base_status"] == "pass"
        ep_plus = theirs["base_status"] == theirs["plus_status"] == "pass"
        base_test = next((t for t in result.tests if t.name == "base"), None)
        cl_base = bool(base_test and base_test.passed)
        cl_plus = bool(result.passed)
        tests = " ".join(f"{t.name}={t.status}" for t in result.tests)
        record = {"task_id": sample.task_id, "sample": sample.sample_id,
                  "variant": variants.get((sample.task_id, sample.sample_id), ""),
                  "evalplus": {"base_status": theirs["base_status"], "plus_status": theirs["plus_status"],
                               "base_fail_tests": str(theirs["base_fail_tests"])[:300],
                               "plus_fail_tests": str(theirs["plus_fail_tests"])[:300]},
                  "codeloop": {"status": result.status, "tests": tests, "judged_by": result.judged_by,
                               "error": result.error[:2000]},
                  "base_agree": ep_base == cl_base, "plus_agree": ep_plus == cl_plus}
        counts["samples"] += 1
        for which, a, b in (("base", ep_base, cl_base), ("plus", ep_plus, cl_plus)):
            counts[f"evalplus_{which}_pass"] += a
            counts[f"codeloop_{which}_pass"] += b
            if a == b:
                counts[f"{which}_agree"] += 1
                continue
            cause = known_cause(sample.task_id, which, a, b)
            counts[f"{which}_known" if cause else f"{which}_unexplained"] += 1
            record[f"{which}_known_cause"] = cause
        per_sample.append(record)
        if not (record["base_agree"] and record["plus_agree"]):
            which = "+".join(w for w in ("base", "plus") if not record[f"{w}_agree"])
            causes = {record.get(f"{w}_known_cause") for w in which.split("+")}
            disagreements.append({**record, "dataset": dataset, "differs_on": which,
                                  "known_cause": causes.pop() if len(causes) == 1 and "" not in causes else "",
                                  "program": sample.program})
    return {"counts": counts, "per_sample": per_sample, "disagreements": disagreements}


def recheck(dataset: str, rows: list[dict], found: dict, python: str, scratch: Path, cache: Path, out_dir: Path,
            workers: int) -> None:
    """Evaluate the samples of the unexplained disagreements again, both sides, one after the other. A disagreement
    the re-run agrees on is flaky (a per-call time limit met or missed under load): counted apart, its re-run
    statuses kept in `recheck`. EvalPlus re-runs them on a dataset of their tasks only (expected outputs and
    reference times computed again)."""
    todo = [d for d in found["disagreements"] if not d["known_cause"]]
    if not todo:
        return
    keyed = rows_by_key(rows)
    subset = [keyed[(d["task_id"], d["sample"])] for d in todo]  # disagreements are in file order
    path = scratch / f"{dataset}_recheck.jsonl"
    write_jsonl(path, subset)
    ep, ep_s, _ = run_evalplus(dataset, subset, python, scratch / f"{dataset}_recheck", cache, out_dir / "recheck")
    samples, results, cl_s, _ = run_codeloop(dataset, path, workers)
    again = compare(dataset, subset, ep, samples, results)["per_sample"]
    counts = found["counts"]
    for d, r in zip(todo, again):
        d["recheck"] = {"evalplus": {k: r["evalplus"][k] for k in ("base_status", "plus_status")},
                        "codeloop": {k: r["codeloop"][k] for k in ("status", "tests", "error")},
                        "base_agree": r["base_agree"], "plus_agree": r["plus_agree"]}
        if all(r[f"{which}_agree"] for which in d["differs_on"].split("+")):
            d["flaky"] = True
            for which in d["differs_on"].split("+"):
                counts[f"{which}_unexplained"] -= 1
                counts[f"{which}_flaky"] += 1
    print(f"   re-checked {len(todo)} unexplained disagreement(s) (evalplus {ep_s:.1f} s, codeloop {cl_s:.1f} s): "
          f"{sum(bool(d.get('flaky')) for d in todo)} agree on the re-run (flaky)", flush=True)


def print_table(disagreements: list[dict]) -> None:
    header = f"  {'task':<14} {'#':>3} {'variant':<11} {'differs':<9} {'evalplus b/p':<15} {'codeloop':<40} class"
    print(header)
    for d in disagreements:
        ep = f"{d['evalplus']['base_status']}/{d['evalplus']['plus_status']}"
        cl = f"{d['codeloop']['status']} ({d['codeloop']['tests']})"
        if d["known_cause"]:
            verdict = d["known_cause"]
        elif "recheck" in d:
            again = d["recheck"]
            verdict = (f"{'FLAKY' if d.get('flaky') else 'UNEXPLAINED'} (re-run: evalplus "
                       f"{again['evalplus']['base_status']}/{again['evalplus']['plus_status']}, codeloop "
                       f"{again['codeloop']['status']})")
        else:
            verdict = "UNEXPLAINED"
        print(f"  {d['task_id']:<14} {d['sample']:>3} {d['variant'] or '-':<11} {d['differs_on']:<9} {ep:<15} {cl:<40} "
              f"{verdict}")
        error = " ".join(d["codeloop"]["error"].split())[:ERROR_CHARS]
        if error:
            print(f"  {'':<14}     codeloop error: {error}")


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--humaneval", type=Path, help="HumanEval+ sample file (EvalPlus format)")
    parser.add_argument("--mbpp", type=Path, help="MBPP+ sample file (EvalPlus format)")
    parser.add_argument("--canonical", action="store_true", help="build both sample files from the canonical "
                        "solutions and broken variants")
    parser.add_argument("--limit", type=int, help="--canonical: only the first N tasks of each dataset")
    parser.add_argument("--evalplus-python", default="/tmp/evalplus-venv/bin/python",
                        help=f"python of a venv with evalplus=={EVALPLUS_VERSION}")
    parser.add_argument("--evalplus-cache", type=Path, help="XDG_CACHE_HOME for EvalPlus, kept (its expected outputs "
                        "are reused by later runs); default: a scratch directory, removed at the end")
    parser.add_argument("--no-recheck", action="store_true", help="do not evaluate the samples of unexplained "
                        "disagreements a second time (to tell flaky time limits apart)")
    parser.add_argument("--workers", type=int, default=2, help="codeloop sandbox workers (EvalPlus: --parallel 2)")
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "evalplus_agreement")
    args = parser.parse_args()
    if not (args.canonical or args.humaneval or args.mbpp):
        parser.error("give --canonical, or --humaneval FILE and/or --mbpp FILE")
    if args.canonical and (args.humaneval or args.mbpp):
        parser.error("--canonical builds the sample files itself: give it alone")

    version = check_evalplus(args.evalplus_python)
    args.output.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="evalplus_agreement_"))
    cache = args.evalplus_cache or scratch / "cache"
    head = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True,
                          check=False).stdout.strip()
    print(f"codeloop {head or '(not a git checkout)'}; evalplus {version} ({args.evalplus_python})", flush=True)
    report = {"codeloop_commit": head, "evalplus_version": version, "evalplus_python": args.evalplus_python, "mode":
              "canonical" if args.canonical else "files", "datasets": {}}
    all_rows = []
    try:
        inputs = {}
        if args.canonical:
            for dataset in DATASETS:
                rows = canonical_samples(dataset, args.limit)
                path = args.output / "samples" / f"{dataset}_canonical.jsonl"
                write_jsonl(path, rows)
                inputs[dataset] = path
        else:
            inputs = {d: p for d, p in (("humaneval", args.humaneval), ("mbpp", args.mbpp)) if p}
        for dataset, path in inputs.items():
            rows = _rows(path)
            print(f"== {DATASETS[dataset][0]}: {len(rows)} samples from {path}", flush=True)
            ep, ep_s, ep_info = run_evalplus(dataset, rows, args.evalplus_python, scratch / dataset, cache,
                                             args.output / "evalplus")
            truth = ep_info["expected_outputs_s"]
            print(f"   evalplus {version}: {ep_s:.1f} s (of which expected outputs "
                  f"{'reused from the cache' if truth is None else f'computed in {truth:.1f} s'}; network "
                  f"{'unshared' if ep_info['no_network'] else 'not unshared'})", flush=True)
            samples, results, cl_s, cl_info = run_codeloop(dataset, path, args.workers)
            print(f"   codeloop sandbox ({cl_info['isolation']}, {args.workers} workers): {cl_s:.1f} s "
                  f"(run_batch {cl_info['run_batch_s']} s)", flush=True)
            found = compare(dataset, rows, ep, samples, results)
            if not args.no_recheck:
                recheck(dataset, rows, found, args.evalplus_python, scratch, cache, args.output / "evalplus",
                        args.workers)
            c = found["counts"]
            n = c["samples"]
            print(f"   compared {n} samples")
            for which in ("base", "plus"):
                print(f"   {which}: agree {c[f'{which}_agree']}/{n}; disagree {n - c[f'{which}_agree']} (known "
                      f"{c[f'{which}_known']}, flaky {c[f'{which}_flaky']}, unexplained {c[f'{which}_unexplained']})")
            print(f"   passes: evalplus base {c['evalplus_base_pass']} plus {c['evalplus_plus_pass']}; codeloop base "
                  f"{c['codeloop_base_pass']} plus {c['codeloop_plus_pass']}")
            if c["solution_text_differs"]:
                print(f"   warning: {c['solution_text_differs']} programs differ between the two sides' assembly")
            if found["disagreements"]:
                print_table(found["disagreements"])
            report["datasets"][DATASETS[dataset][0]] = {
                "sample_file": str(path), "counts": c,
                "wall_s": {"evalplus": round(ep_s, 2), "codeloop": round(cl_s, 2)},
                "evalplus": ep_info, "codeloop": cl_info, "disagreements": found["disagreements"]}
            all_rows += [{"dataset": DATASETS[dataset][0], **r} for r in found["per_sample"]]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    report["known_causes"] = KNOWN
    unexplained = sum(d["counts"]["base_unexplained"] + d["counts"]["plus_unexplained"]
                      for d in report["datasets"].values())
    report["unexplained_disagreements"] = unexplained
    (args.output / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    write_jsonl(args.output / "samples.jsonl", all_rows)
    print("\nknown causes: " + "; ".join(f"{k}: {v}" for k, v in KNOWN.items()))
    print(f"unexplained disagreements: {unexplained}; report {args.output / 'report.json'}")


if __name__ == "__main__":
    main()
