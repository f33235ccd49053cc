"""jobs/rerank.py end to end on the shared Ray cluster: the output contract, chains, reusing an evaluation, the
reward model through its actor pool, bad input, and a killed driver re-run to the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import rerank as job
from raylib.data.problems import load_problems
from raylib.data.samples import reference_samples
from raylib.files import write_records
from tests.test_evaluate_job import wait_for_rows

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration
TASKS = 8


def run_job(capsys, *args) -> tuple[int, str, str]:
    rc = job.main(["--dataset", "humaneval", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def scores(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "scores.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def problems():
    everything = load_problems("humaneval")
    return {t: everything[t] for t in list(everything)[:TASKS]}


@pytest.fixture(scope="module")
def samples_file(problems, tmp_path_factory):
    """Per task: the canonical solution twice, a wrong result and an exception (4 samples, 2 passing)."""
    rows = reference_samples(problems, ("canonical", "wrong-result", "exception", "canonical"))
    return write_records(tmp_path_factory.mktemp("samples") / "samples.jsonl", rows)


@pytest.fixture(scope="module")
def first_run(ray_cluster, samples_file, tmp_path_factory):
    """public-tests with the hidden-test evaluation run by the job itself."""
    output = tmp_path_factory.mktemp("rerank") / "public"
    rc = job.main(["--dataset", "humaneval", "--samples", str(samples_file), "--verifier", "public-tests",
                   "--output", str(output)])
    assert rc == 0
    return output


def test_outputs_follow_the_contract(first_run):
    rows = scores(first_run)
    assert len(rows) == 4 * TASKS
    assert {"task_id", "sample_id", "verifier", "score", "details"} <= rows[0].keys()
    assert [(r["task_id"], r["sample_id"]) for r in rows[:4]] == [("HumanEval/0", i) for i in range(4)]
    summary = json.loads((first_run / "rerank_summary.json").read_text())
    public = summary["verifiers"]["public-tests"]
    assert {"top1", "pass@1", "pass@n"} <= public.keys()
    assert all(0.0 <= public[k] <= 1.0 for k in ("top1", "pass@1", "pass@n", "rank@1"))
    assert public["pass@1"] == pytest.approx(0.5) and public["pass@n"] == 1.0  # 2 of 4 pass, in every task
    assert public["top1"] > public["pass@1"]  # the visible examples tell the canonical solution from the others
    assert summary["best_of_k"]["k"] == [1, 2, 3, 4]
    assert (first_run / "evaluation" / "results.jsonl").exists()  # the hidden tests ran here
    assert (first_run / "best_of_k.png").stat().st_size > 0
    assert "| public-tests |" in (first_run / "report.md").read_text()


def test_public_test_scores_are_fractions_of_the_examples_shown(first_run):
    by_sample = {(r["task_id"], r["sample_id"]): r for r in scores(first_run)}
    canonical = by_sample[("HumanEval/0", 0)]
    assert canonical["score"] == 1.0 and canonical["details"]["passed"] == canonical["details"]["total"] >= 1
    wrong = by_sample[("HumanEval/0", 1)]
    assert wrong["score"] < 1.0


def test_a_chain_reuses_an_evaluation_and_reports_each_verifier_and_the_chain(first_run, samples_file, tmp_path,
                                                                              capsys):
    output = tmp_path / "chain"
    rc, out, _ = run_job(capsys, "--samples", samples_file, "--verifier", "public-tests,self-consistency",
                         "--results", first_run / "evaluation", "--output", output)
    assert rc == 0
    assert not (output / "evaluation").exists()
    summary = json.loads((output / "rerank_summary.json").read_text())
    assert list(summary["verifiers"]) == ["public-tests", "public-tests,self-consistency", "self-consistency"]
    assert "| public-tests,self-consistency |" in out
    # the canonical solution is the only program given twice: self-consistency alone picks it
    assert summary["verifiers"]["self-consistency"]["top1"] == 1.0
    assert summary["verifiers"]["public-tests,self-consistency"]["top1"] == 1.0
    assert len(scores(output)) == 2 * 4 * TASKS


def test_the_reward_model_scores_through_its_actor_pool_as_a_direct_forward_pass(first_run, samples_file, tiny_model,
                                                                                tmp_path, capsys):
    from raylib.data.samples import read_samples
    from tests.test_rerank_models import direct_logits, train_classifier

    model = train_classifier(tiny_model, tmp_path / "orm", labels=1)
    output = tmp_path / "orm-run"
    rc, _, err = run_job(capsys, "--samples", samples_file, "--verifier", "public-tests,clustering,orm",
                         "--model", model,
                         "--results", first_run / "evaluation", "--output", output,
                         "verifiers.reward_model.batch_size=3")
    assert rc == 0, err
    problems = load_problems("humaneval")
    samples, _ = read_samples(samples_file, problems)
    programs = {(s.task_id, s.sample_id): s.program for s in samples}
    rows = [r for r in scores(output) if r["verifier"] == "orm"]
    assert len(rows) == 4 * TASKS  # three pools (2 + 2 sandbox workers, 1 model) fit the 4-CPU test cluster at once
    for row in rows[:8]:
        expected = direct_logits(model, problems[row["task_id"]].prompt, programs[row["task_id"], row["sample_id"]])
        assert row["score"] == pytest.approx(expected[0], abs=1e-4)


# ------------------------------------------------------------------------------------------------- bad input


def test_a_verifier_that_needs_a_model_without_one_exits_2(samples_file, tmp_path):
    for verifier, missing in (("public-tests,orm", "orm needs a reward model checkpoint: --model"),
                              ("pairwise", "pairwise needs a preference model checkpoint: --model")):
        done = subprocess.run([sys.executable, str(REPO / "jobs/rerank.py"), "--samples", str(samples_file),
                               "--verifier", verifier, "--output", str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and missing in done.stderr


def test_a_checkpoint_that_is_not_a_sequence_classifier_exits_2_naming_it(samples_file, tiny_model, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "jobs/rerank.py"), "--samples", str(samples_file),
                           "--verifier", "orm", "--model", tiny_model, "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert tiny_model in done.stderr and "LlamaForCausalLM" in done.stderr
    assert "not a sequence classifier" in done.stderr


def test_samples_of_unknown_tasks_exit_2_naming_the_line(tmp_path, capsys):
    path = write_records(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return True\n"},
                                                {"task_id": "Nope/1", "completion": "    return True\n"}])
    rc, _, err = run_job(capsys, "--samples", path, "--verifier", "self-consistency", "--output", tmp_path / "o")
    assert rc == 2 and f"{path}:2" in err and "Nope/1" in err


def test_verdicts_of_other_problems_are_refused(first_run, samples_file, tmp_path, capsys):
    rc, _, err = run_job(capsys, "--samples", samples_file, "--verifier", "self-consistency", "--output", tmp_path,
                         "--results", first_run / "evaluation", "--dataset", "humaneval+")
    assert rc == 2 and "verdicts are of other problems" in err and "'humaneval'" in err


def test_an_output_takes_new_verifiers_but_refuses_changed_settings(first_run, samples_file, tmp_path, capsys):
    common = ["--samples", samples_file, "--results", first_run / "evaluation", "--output", tmp_path]
    assert run_job(capsys, *common, "--verifier", "public-tests")[0] == 0
    rc, _, err = run_job(capsys, *common, "--verifier", "public-tests,self-consistency")
    assert rc == 0, err
    assert {r["verifier"] for r in scores(tmp_path)} == {"public-tests", "self-consistency"}
    rc, _, err = run_job(capsys, *common, "--verifier", "public-tests", "verifiers.public_tests.time_limit_s=2")
    assert rc == 2 and "changed: verifier public-tests" in err
    # a run with fewer verifiers keeps the others' scores aside, not lost
    assert run_job(capsys, *common, "--verifier", "self-consistency")[0] == 0
    assert {r["verifier"] for r in scores(tmp_path)} == {"self-consistency"}
    aside = [json.loads(line) for line in (tmp_path / "scores.stale.jsonl").read_text().splitlines()]
    assert len(aside) == 4 * TASKS and {r["verifier"] for r in aside} == {"public-tests"}


def test_a_problem_without_visible_tests_is_scored_unknown_and_counted(ray_cluster, tmp_path, capsys):
    shown = {"task_id": "t/shown", "prompt": 'def inc(x):\n    """Add one.\n    >>> inc(1)\n    2\n    """\n',
             "entry_point": "inc", "tests": {"kind": "assertions", "assertions": ["assert inc(5) == 6"]}}
    hidden = {"task_id": "t/hidden", "prompt": 'def dec(x):\n    """Subtract one."""\n', "entry_point": "dec",
              "tests": {"kind": "assertions", "assertions": ["assert dec(5) == 4"]}}
    for row in (shown, hidden):
        row["completion_prefix"] = row["prompt"]
    problems = write_records(tmp_path / "problems.jsonl", [shown, hidden])
    completions = [("t/shown", "x + 1"), ("t/shown", "x"), ("t/hidden", "x - 1"), ("t/hidden", "x")]
    samples = write_records(tmp_path / "samples.jsonl", [{"task_id": task, "completion": f"    return {body}\n"}
                                                         for task, body in completions])
    output = tmp_path / "out"
    rc, out, err = run_job(capsys, "--dataset", "jsonl", "--dataset_path", problems, "--samples", samples,
                           "--verifier", "public-tests", "--output", output)
    assert rc == 0, err
    rows = {(r["task_id"], r["sample_id"]): r for r in scores(output)}
    assert rows[("t/shown", 0)]["score"] == 1.0 and rows[("t/shown", 1)]["score"] == 0.0
    assert rows[("t/hidden", 0)]["score"] is None and rows[("t/hidden", 0)]["details"]["reason"]
    summary = json.loads((output / "rerank_summary.json").read_text())
    assert summary["verifiers"]["public-tests"]["all_unknown"] == 1
    assert summary["verifiers"]["public-tests"]["top1"] == pytest.approx((1.0 + 0.5) / 2)  # unknown: a tie of all


# ------------------------------------------------------------------------------------------------- resume


def test_killing_the_driver_mid_run_and_rerunning_gives_identical_files(ray_cluster, first_run, tmp_path_factory,
                                                                       capsys):
    import ray

    everything = load_problems("humaneval")
    slow = {t: everything[t] for t in list(everything)[:24]}
    base = tmp_path_factory.mktemp("kill")
    samples = write_records(base / "slow.jsonl",
                            reference_samples(slow, ("canonical", "wrong-result", "infinite-loop")))
    args = ["--samples", samples, "--verifier", "public-tests,clustering,self-consistency", "--problems_per_batch", "1",
            "verifiers.public_tests.time_limit_s=1", "verifiers.clustering.time_limit_s=1"]
    results = base / "results.jsonl"  # labels: the job's own evaluation would be slower than the scoring
    baseline = base / "baseline"
    rc, _, err = run_job(capsys, *args, "--output", baseline)
    assert rc == 0, err
    results.write_text((baseline / "evaluation" / "results.jsonl").read_text())

    output = base / "killed"
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(REPO))
    driver = subprocess.Popen([sys.executable, str(REPO / "jobs/rerank.py"), *map(str, args), "--results",
                               str(results), "--output", str(output)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_rows(output / "scores.jsonl", 6)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    partial = (output / "scores.jsonl").read_bytes().count(b"\n")
    assert 6 <= partial < 3 * 3 * 24, "the driver must die mid-run"
    rc, _, err = run_job(capsys, *args, "--results", results, "--output", output)
    assert rc == 0, err
    assert "resuming:" in (output / "job.log").read_text()
    assert (output / "scores.jsonl").read_bytes() == (baseline / "scores.jsonl").read_bytes()
    assert (output / "rerank_summary.json").read_bytes() == (baseline / "rerank_summary.json").read_bytes()
    assert (output / "report.md").read_bytes() == (baseline / "report.md").read_bytes()


# ------------------------------------------------------------------------------------------------- judges, RVBS


def test_an_llm_judge_reranks_through_a_real_http_endpoint(ray_cluster, judge_url, tmp_path, capsys):
    from tests.judge_server import MUDDLED, RIGHT, WRONG

    problem = {"task_id": "add/0", "prompt": 'def add(a, b):\n    """Return a plus b."""\n', "entry_point": "add",
               "tests": {"kind": "assertions", "assertions": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]}}
    problems = write_records(tmp_path / "problems.jsonl", [problem])
    samples = write_records(tmp_path / "samples.jsonl", [{"task_id": "add/0", "solution": code}
                                                         for code in (WRONG, MUDDLED, RIGHT)])
    output = tmp_path / "out"
    rc, _, err = run_job(capsys, "--dataset", "jsonl", "--dataset_path", problems, "--samples", samples,
                         "--verifier", "judge,judge-pairwise", "--output", output,
                         "verifiers.judge.engine.backend=openai", "verifiers.judge.engine.model=judge-test",
                         f"verifiers.judge.engine.openai.base_url={judge_url}",
                         "verifiers.judge.engine.openai.retries=0")
    assert rc == 0, err
    by = {(r["verifier"], r["sample_id"]): r["score"] for r in scores(output)}
    assert [by["judge", i] for i in range(3)] == [pytest.approx(1 / 9), None, pytest.approx(8 / 9)]
    # pairs: right beats wrong; the muddled program's pairs are undecided (ties)
    assert [by["judge-pairwise", i] for i in range(3)] == [-1.0, 0.0, 1.0]
    summary = json.loads((output / "rerank_summary.json").read_text())["verifiers"]
    assert summary["judge"]["top1"] == summary["judge-pairwise"]["top1"] == 1.0
    assert summary["judge"]["pass@1"] == pytest.approx(1 / 3)


def test_rvbs_picks_groups_with_a_selector_trained_on_a_rerank_run(first_run, samples_file, tmp_path, capsys):
    import jobs.train_selector as train
    from raylib.rerank.selection import normalise_code
    from raylib.rerank.selector import load_selector, selector_scores

    selector = tmp_path / "selector"
    assert train.main(["--data", str(first_run), "--base-verifier", "public-tests", "--results",
                       str(first_run / "evaluation" / "results.jsonl"), "--folds", "2", "--output",
                       str(selector)]) == 0
    output = tmp_path / "rvbs"
    rc, _, err = run_job(capsys, "--samples", samples_file, "--verifier", "public-tests,rvbs", "--selector", selector,
                         "--results", first_run / "evaluation", "--output", output)
    assert rc == 0, err
    model, _ = load_selector(selector / "selector.joblib")
    programs = {(r["task_id"], r["sample_id"]): r["program"]
                for r in map(json.loads, (first_run / "evaluation" / "results.jsonl").read_text().splitlines())}
    rows = scores(output)
    for task in {r["task_id"] for r in rows}:
        base = [r for r in rows if r["task_id"] == task and r["verifier"] == "public-tests"]
        rvbs = [r for r in rows if r["task_id"] == task and r["verifier"] == "rvbs"]
        keys = [normalise_code(programs[task, r["sample_id"]]) for r in base]
        assert [r["score"] for r in rvbs] == pytest.approx(selector_scores(model, keys, [r["score"] for r in base]))
    summary = json.loads((output / "rerank_summary.json").read_text())["verifiers"]
    assert list(summary) == ["public-tests", "rvbs"]  # rvbs builds on public-tests: no separate chain entry
    assert 0.0 <= summary["rvbs"]["top1"] <= 1.0
