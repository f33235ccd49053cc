"""CodeFavor end to end: jobs/synth_prefs.py's three methods against a real local OpenAI-compatible endpoint
(tests/synth_server.py answers by rule) and a tiny model, the sandbox checking Critic-Evol's second attempts and
timing efficiency pairs, and jobs/pref_bench.py's judges (LLM over HTTP, tiny pairwise classifier and reward model)
on the bench the execution method writes, with the both-order accounting checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jobs.pref_bench as bench_job
import jobs.synth_prefs as synth_job

pytestmark = pytest.mark.integration

GOOD = "def add(a, b):\n    return a + b"
TIMES = "def add(a, b):\n    return a * b"
PROBLEMS = [
    {"task_id": "demo/add", "prompt": 'def add(a, b):\n    """Return the sum of a and b."""\n',
     "entry_point": "add", "reference_solution": GOOD + "\n",
     "tests": {"kind": "assertions", "assertions": ["assert add(1, 2) == 3", "assert add(0, 0) == 0",
                                                    "assert add(2, 2) == 4"]}},
    {"task_id": "demo/total", "prompt": 'def total(n):\n    """Return 0 + 1 + ... + (n - 1)."""\n',
     "entry_point": "total", "reference_solution": "def total(n):\n    return n * (n - 1) // 2\n",
     "tests": {"kind": "assertions", "assertions": ["assert total(10) == 45", "assert total(300000) == 44999850000"]}},
]
FAST = ["def total(n):\n    return n * (n - 1) // 2\n", "def total(n):\n    return (n * n - n) // 2\n"]
SLOW = "def total(n):\n    for _ in range(40):\n        s = sum(range(n))\n    return s\n"
WRONG = "def total(n):\n    return n * n\n"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def endpoint(url: str, *extra: str) -> list[str]:
    return ["--llm.model", "rules", "llm.engine.backend=openai", f"llm.engine.openai.base_url={url}", *extra]


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("problems") / "problems.jsonl", PROBLEMS)


# ------------------------------------------------------------------------------------------------- Commit-Instruct


def commit(cid: str, message: str, old: str = TIMES, new: str = GOOD) -> dict:
    return {"commit": cid, "old_contents": old, "new_contents": new, "message": message, "lang": "Python",
            "license": "mit"}


def test_commit_instruct_over_http_makes_pairs_and_counts_every_drop(ray_cluster, synth_url, tmp_path):
    from tests.synth_server import SynthServer

    commits = write_jsonl(tmp_path / "commits.jsonl", [
        commit("c-good", "Add instead of multiplying"), commit("c-minor", "[minor] rename"),
        commit("c-unsure", "[unsure] tweak"), commit("c-broken", "[broken] fix"), commit("c-same", "[same] fix"),
        commit("c-empty", "empty", new="")])
    output = tmp_path / "ci"
    args = ["--method", "commit-instruct", "--commits", str(commits), "--output", str(output), *endpoint(synth_url)]
    assert synth_job.main(args) == 0
    [pair] = read_jsonl(output / "pairs.jsonl")
    assert (pair["chosen"], pair["rejected"], pair["task_id"]) == (GOOD, TIMES, "c-good")
    assert pair["instruction"] == "Write the function: Add instead of multiplying"
    assert pair["feedback"] == "[IMPROVED_CODE] fixes what [NAIVE_CODE] got wrong."
    assert pair["provenance"] == {"method": "commit-instruct", "prompts": "commit-instruct@1", "model": "rules",
                                  "commit": "c-good", "language": "python", "license": "mit"}
    dropped = {d["source"]: (d["stage"], d["reason"]) for d in read_jsonl(output / "dropped.jsonl")}
    assert dropped == {"c-minor": ("decide", "not an improvement ([NO])"),
                       "c-unsure": ("decide", "no [YES]/[NO] decision"),
                       "c-broken": ("construct", "missing section FEEDBACK (or out of order)"),
                       "c-same": ("construct", "naive and improved code are the same"),
                       "c-empty": ("input", "empty old or new contents")}
    summary = json.loads((output / "synth_summary.json").read_text())
    assert (summary["items"], summary["pairs"], summary["dropped"], summary["skipped_input"]) == (5, 1, 4, 1)
    asked = len(SynthServer.asked)
    assert asked == 5 + 5 + 3  # explain all, decide all, construct the three [YES]
    assert synth_job.main(args) == 0  # resumed: every answer is on file
    assert len(SynthServer.asked) == asked
    assert read_jsonl(output / "pairs.jsonl") == [pair]
    assert synth_job.main([*args, "--limit", "2"]) == 0  # fewer items: nothing asked, nothing lost
    assert len(SynthServer.asked) == asked and len(read_jsonl(output / "answers" / "explain.jsonl")) == 5
    assert read_jsonl(output / "pairs.jsonl") == [pair]
    assert synth_job.main([*args, "llm.temperature=0.3"]) == 2  # another run's answers are not reused


def test_commit_instruct_exits_3_when_the_endpoint_fails_and_asks_again_on_the_next_run(ray_cluster, synth_url,
                                                                                        tmp_path):
    from tests.synth_server import SynthServer

    commits = write_jsonl(tmp_path / "commits.jsonl", [commit("c-good", "Add instead of multiplying")])
    args = ["--method", "commit-instruct", "--commits", str(commits), "--output", str(tmp_path / "out"),
            *endpoint(synth_url, "llm.engine.openai.retries=0")]
    SynthServer.status = 503
    try:
        assert synth_job.main(args) == 3
    finally:
        SynthServer.status = None
    summary = json.loads((tmp_path / "out" / "synth_summary.json").read_text())
    assert (summary["pairs"], summary["unanswered"], summary["dropped"]) == (0, 1, 0)
    assert synth_job.main(args) == 0
    assert len(read_jsonl(tmp_path / "out" / "pairs.jsonl")) == 1
    moved = [a for a in args if not a.startswith("llm.engine.openai.base_url")]
    assert synth_job.main([*moved, "llm.engine.openai.base_url=http://127.0.0.1:9/v1"]) == 2  # another endpoint


def test_commit_instruct_with_a_tiny_model_runs_every_turn_and_drops_what_it_cannot_read(ray_cluster, tiny_model,
                                                                                          tmp_path):
    commits = write_jsonl(tmp_path / "commits.jsonl", [commit("a", "Fix add"), commit("b", "Fix it again")])
    output = tmp_path / "tiny"
    assert synth_job.main(["--method", "commit-instruct", "--commits", str(commits), "--output", str(output),
                           "--llm.model", tiny_model, "llm.engine.backend=hf", "llm.max_tokens=16"]) == 0
    summary = json.loads((output / "synth_summary.json").read_text())
    assert summary["items"] == 2 and summary["pairs"] + summary["dropped"] == 2
    assert len(read_jsonl(output / "answers" / "explain.jsonl")) == 2
    assert all(d["reason"] for d in read_jsonl(output / "dropped.jsonl"))


# ------------------------------------------------------------------------------------------------- Critic-Evol


def test_critic_evol_keeps_second_attempts_that_parse_and_lose_no_test(ray_cluster, synth_url, problems_file,
                                                                         tmp_path):
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "demo/add", "solution": GOOD},                           # good enough: no pair
        {"task_id": "demo/add", "solution": TIMES},                          # -> a + b: passes all: a pair
        {"task_id": "demo/add", "solution": TIMES + "  # REGRESS"},          # -> a - b: loses add(2, 2) == 4
        {"task_id": "demo/add", "solution": TIMES + "  # BADSYNTAX"},        # -> does not parse
        {"task_id": "demo/add", "solution": TIMES + "  # CUTSHORT"},         # -> cut inside ATTEMPT_2
        {"task_id": "demo/add", "solution": TIMES + "  # NOFEEDBACKNAME"},   # -> feedback names no attempt
        {"task_id": "demo/add", "solution": TIMES},                          # the same program again: asked once
    ])
    output = tmp_path / "ce"
    assert synth_job.main(["--method", "critic-evol", "--samples", str(samples), "--dataset", "jsonl",
                           "--dataset_path", str(problems_file), "--output", str(output), *endpoint(synth_url)]) == 0
    [pair] = read_jsonl(output / "pairs.jsonl")
    assert (pair["chosen"], pair["rejected"]) == (GOOD, TIMES)
    assert pair["criteria"] == "The function must return the sum." and pair["objective"] == "improvement"
    assert pair["provenance"]["tests"] == {"first_passed": False, "second_passed": True, "first_status": "failed",
                                           "second_status": "passed"}
    assert pair["instruction"] == PROBLEMS[0]["prompt"]
    reasons = {d["source"]: d["reason"] for d in read_jsonl(output / "dropped.jsonl")}
    assert reasons["demo/add#0"] == "good enough: the critic proposed no improvement"
    assert reasons["demo/add#2"].startswith("the second attempt fails tests the first passed (")
    assert "add(2, 2)" in reasons["demo/add#2"] and "add(0, 0)" not in reasons["demo/add#2"]
    assert reasons["demo/add#3"].startswith("the second attempt does not parse (SyntaxError")
    assert reasons["demo/add#4"] == "missing section ATTEMPT_2"
    assert reasons["demo/add#5"] == "the feedback names neither [ATTEMPT_1] nor [ATTEMPT_2]"
    assert len(reasons) == 5
    checks = read_jsonl(output / "checks" / "results.jsonl")
    assert len(checks) == 4  # both attempts of the two critiques that survived reading (#1 and #2)


def test_critic_evol_without_a_dataset_reads_instruction_rows_and_runs_no_tests(ray_cluster, synth_url, tmp_path):
    rows = write_jsonl(tmp_path / "weak.jsonl", [
        {"instruction": "Add two numbers.", "response": f"Here:\n```python\n{TIMES}\n```"},
        {"instruction": "Add two numbers.", "response": "I cannot help."}])
    output = tmp_path / "ce2"
    assert synth_job.main(["--method", "critic-evol", "--samples", str(rows), "--output", str(output),
                           *endpoint(synth_url)]) == 0
    pairs = read_jsonl(output / "pairs.jsonl")
    assert [(p["chosen"], p["rejected"], p["provenance"]["tests"]) for p in pairs] == [(GOOD, TIMES, None)]
    assert not (output / "checks").exists()
    [skipped] = read_jsonl(output / "dropped.jsonl")
    assert (skipped["stage"], skipped["source"]) == ("input", "line-2#2")
    assert skipped["reason"].startswith("the solution holds no code (SyntaxError")


def test_synth_prefs_refuses_missing_or_mixed_inputs_naming_them(tmp_path, capsys):
    from raylib.config import ConfigError

    with pytest.raises(ConfigError, match="--method execution needs --results"):
        synth_job.main(["--method", "execution", "--output", str(tmp_path / "x")])
    with pytest.raises(ConfigError, match="--method critic-evol does not read --commits"):
        synth_job.main(["--method", "critic-evol", "--samples", "s", "--commits", "c"])
    bad = write_jsonl(tmp_path / "commits.jsonl", [{"old_contents": "x", "new_contents": "y"}])
    assert synth_job.main(["--method", "commit-instruct", "--commits", str(bad), "--output", str(tmp_path / "y")]) == 2
    assert f"{bad}:1: field 'message' (or 'subject') is missing" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- execution pairs


@pytest.fixture(scope="module")
def execution_pairs(ray_cluster, problems_file, tmp_path_factory) -> Path:
    import jobs.evaluate as evaluate_job

    root = tmp_path_factory.mktemp("exec")
    samples = write_jsonl(root / "samples.jsonl", [
        {"task_id": "demo/add", "solution": GOOD}, {"task_id": "demo/add", "solution": TIMES},
        {"task_id": "demo/add", "solution": "def add(a, b):\n    return a - b"},
        *({"task_id": "demo/total", "solution": s} for s in [*FAST, SLOW, WRONG])])
    assert evaluate_job.main(["--dataset", "jsonl", "--dataset_path", str(problems_file), "--samples", str(samples),
                              "--output", str(root / "eval")]) == 0
    output = root / "pairs"
    assert synth_job.main(["--method", "execution", "--results", str(root / "eval"), "--dataset_path",
                           str(problems_file), "--output", str(output), "pairs.repeats=3",
                           "execution.workers_per_actor=1"]) == 0
    return output


def test_correctness_pairs_join_passing_and_failing_programs_of_a_problem(execution_pairs):
    pairs = [p for p in read_jsonl(execution_pairs / "pairs.jsonl") if p["objective"] == "correctness"]
    by_task = {}
    for p in pairs:
        by_task.setdefault(p["task_id"], set()).add((p["chosen"], p["rejected"]))
    assert by_task["demo/add"] == {(GOOD, TIMES), (GOOD, "def add(a, b):\n    return a - b")}
    assert by_task["demo/total"] == {(FAST[0], WRONG), (FAST[1], WRONG), (SLOW, WRONG)}
    assert {p["provenance"]["rejected_status"] for p in pairs} == {"failed"}


def test_efficiency_pairs_really_differ_in_measured_runtime(execution_pairs):
    pairs = [p for p in read_jsonl(execution_pairs / "pairs.jsonl") if p["objective"] == "efficiency"]
    assert sorted((p["chosen"], p["rejected"]) for p in pairs) == sorted((f, SLOW) for f in FAST)
    for p in pairs:
        fast, slow = p["provenance"]["chosen_runtimes_s"], p["provenance"]["rejected_runtimes_s"]
        assert len(fast) == len(slow) == 3
        assert min(slow) >= 2.0 * max(fast) and min(slow) - max(fast) >= 0.005
    timing = read_jsonl(execution_pairs / "timing" / "results.jsonl")
    assert len(timing) == 3 * 3 and all(r["passed"] for r in timing)  # demo/total's passing programs, 3 repeats
    # the two fast programs are about equally fast: no pair between them
    assert not any({p["chosen"], p["rejected"]} == set(FAST) for p in pairs)


def test_the_execution_bench_is_read_by_pref_bench_and_training(execution_pairs, tmp_path):
    from jobs import train_pref, train_rm
    from raylib.synth.bench import read_bench

    tasks = read_bench(execution_pairs / "bench.jsonl")
    pairs = read_jsonl(execution_pairs / "pairs.jsonl")
    assert len(tasks) == len(pairs) == 7
    assert all(t.choices[t.gt_choice] == p["chosen"] for t, p in zip(tasks, pairs))
    assert {t.gt_choice for t in tasks} == {0, 1}
    # what both training jobs read before any worker starts (raylib.train.data.reward, with the pairs' criteria)
    _, train, validation, _ = train_pref.prepare(train_pref.TrainPrefConfig(model="minilm", data={
        "train": str(execution_pairs / "pairs.jsonl"), "validation_fraction": 0.3}))
    assert len(train) + len(validation) == 2 * 7  # both orders of each pair
    _, train, validation, _ = train_rm.prepare(train_rm.TrainRMConfig(model="minilm", data={
        "train": str(execution_pairs / "pairs.jsonl"), "validation_fraction": 0.3}, train={
        "optim": {"micro_batch_size": 1}, "scaling": {"workers": 1}}))
    assert len(train) + len(validation) == 7


# ------------------------------------------------------------------------------------------------- pref_bench


def test_an_llm_judge_over_http_on_the_execution_bench_scores_as_worked_out_by_hand(execution_pairs, synth_url,
                                                                                    tmp_path):
    output = tmp_path / "llm"
    assert bench_job.main(["--bench", str(execution_pairs / "bench.jsonl"), "--judge", "llm", "--model", "rules",
                           "judge_settings.engine.backend=openai",
                           f"judge_settings.engine.openai.base_url={synth_url}", "--output", str(output)]) == 0
    s = json.loads((output / "bench_summary.json").read_text())
    # The judge prefers the program with "a + b": right in both orders on demo/add's 2 pairs; on demo/total's 5 it
    # sees neither and names A both times: right in one order of each (0.5). Verdicts: 4 on demo/add (2 A, 2 B),
    # 10 A on demo/total: 12 of 14 name A.
    assert s["accuracy"] == pytest.approx((2 * 1 + 5 * 0.5) / 7)
    assert s["position_bias"] == pytest.approx(12 / 14 - 0.5)
    assert s["consistency"] == pytest.approx(2 / 7)
    assert s["undecided"] == 0
    assert s["objectives"]["efficiency"]["accuracy"] == pytest.approx(0.5)
    assert s["prompts"] == "codefavor-judge@1"
    assert (output / "accuracy.png").stat().st_size > 0 and "| all | 7 |" in (output / "report.md").read_text()


def test_unreadable_verdicts_count_half_and_endpoint_failures_are_asked_again(ray_cluster, synth_url, tmp_path):
    from tests.synth_server import SynthServer

    def task(task_id: str, a: str, b: str, gt: int) -> dict:
        return {"task_id": task_id, "instruction": "Add.", "choices": [a, b], "gt_choice": gt,
                "objective": "correctness"}

    bench = write_jsonl(tmp_path / "b.jsonl", [
        task("muddled", GOOD + "  # MUDDLED", TIMES, 0),   # no verdict either way: 0.5, 0.5
        task("clear", TIMES, GOOD, 1),                     # right both ways: 1, 1
        task("refused", TIMES + "  # FAIL", GOOD, 1),      # HTTP 400 as stored (0.5, not asked again), then 1
        task("flaky", GOOD + "  # FLAKY", TIMES, 0)])      # HTTP 503 while down; then right both ways
    args = ["--bench", str(bench), "--judge", "llm", "--model", "rules", "judge_settings.engine.backend=openai",
            "judge_settings.engine.openai.retries=0", f"judge_settings.engine.openai.base_url={synth_url}",
            "--remove_comments", "false", "--output", str(tmp_path / "out")]  # the markers are comments
    SynthServer.down = True
    assert bench_job.main(args) == 3
    s = json.loads((tmp_path / "out" / "bench_summary.json").read_text())
    assert s["endpoint_failures"] == 1 and s["accuracy"] == pytest.approx((1 + 2 + 1.5 + 1) / 8)
    SynthServer.down, SynthServer.asked = False, []
    assert bench_job.main(args) == 0
    assert len(SynthServer.asked) == 2  # only the flaky task's two asks
    s = json.loads((tmp_path / "out" / "bench_summary.json").read_text())
    assert s["accuracy"] == pytest.approx((1 + 2 + 1.5 + 2) / 8)
    assert s["undecided"] == pytest.approx(3 / 8) and s["endpoint_failures"] == 0
    refused = next(r for r in read_jsonl(tmp_path / "out" / "verdicts.jsonl") if r["task_id"] == "refused")
    assert refused["verdicts"] == [None, "A"] and "error" in refused["details"][0]
    assert bench_job.main([*args[:-1], str(tmp_path / "out"), "--model", "another"]) == 2  # not another judge's


def test_pairwise_classifier_and_reward_model_judges_decide_by_their_outputs(execution_pairs, tiny_model, tmp_path):
    from raylib.rerank.settings import ModelVerifierSettings
    from raylib.rerank.verifiers.models import PairwisePreference, RewardModel
    from raylib.synth.bench import read_bench, without_comments
    from tests.test_rerank_models import train_classifier

    tasks = {t.key: t for t in read_bench(execution_pairs / "bench.jsonl")}
    pref = train_classifier(tiny_model, tmp_path / "pref", labels=2)
    assert bench_job.main(["--bench", str(execution_pairs / "bench.jsonl"), "--judge", "pair-rm", "--model", pref,
                           "--output", str(tmp_path / "pb")]) == 0
    model = PairwisePreference(ModelVerifierSettings(model=pref, max_length=1024))
    for row in read_jsonl(tmp_path / "pb" / "verdicts.jsonl"):
        t = tasks[row["key"]]
        shown = [without_comments(c) for c in t.choices]  # as CodeFavor shows them (--remove_comments default)
        given = model.logits([model.encode_preference(t.instruction, *shown, t.criteria)])[0]
        assert row["details"][0]["logits"] == pytest.approx(given, abs=1e-4)
        assert row["verdicts"][0] == ("A" if given[0] > given[1] else "B")
    orm = train_classifier(tiny_model, tmp_path / "orm", labels=1)
    assert bench_job.main(["--bench", str(execution_pairs / "bench.jsonl"), "--judge", "rm", "--model", orm,
                           "--output", str(tmp_path / "rm")]) == 0
    scorer = RewardModel(ModelVerifierSettings(model=orm, max_length=1024))
    from raylib.train.data.reward import task_text

    for row in read_jsonl(tmp_path / "rm" / "verdicts.jsonl"):
        t = tasks[row["key"]]
        a, b = scorer.values([(task_text(t.instruction, t.criteria), without_comments(c)) for c in t.choices])
        assert row["details"][0]["scores"] == pytest.approx([a, b], abs=1e-4)
        assert row["verdicts"] == (["A", "B"] if a > b else ["B", "A"] if b > a else [None, None])
    s = json.loads((tmp_path / "rm" / "bench_summary.json").read_text())
    assert s["consistency"] == pytest.approx(1.0) or s["undecided"] > 0  # a scalar score has no position


def test_pref_bench_refuses_a_checkpoint_that_is_not_the_judge_kind(execution_pairs, tiny_model, tmp_path, capsys):
    assert bench_job.main(["--bench", str(execution_pairs / "bench.jsonl"), "--judge", "pair-rm", "--model",
                           tiny_model, "--output", str(tmp_path / "x")]) == 2
    assert "not a sequence classifier" in capsys.readouterr().err


def test_an_llm_judge_on_a_tiny_local_model_reads_every_answer(execution_pairs, tiny_model, tmp_path):
    output = tmp_path / "tiny"
    assert bench_job.main(["--bench", str(execution_pairs / "bench.jsonl"), "--judge", "llm", "--model", tiny_model,
                           "judge_settings.engine.backend=hf", "judge_settings.max_tokens=16", "--limit", "3",
                           "--output", str(output)]) == 0
    rows = read_jsonl(output / "verdicts.jsonl")
    assert len(rows) == 3 and all("answer" in d for r in rows for d in r["details"])
    # 16 tokens end an answer before any [RESULT]: cut answers decide nothing
    assert all(v is None for r in rows for v, d in zip(r["verdicts"], r["details"]) if d.get("cut"))
    s = json.loads((output / "bench_summary.json").read_text())
    decided = [v for r in rows for v in r["verdicts"] if v is not None]
    assert s["undecided"] == pytest.approx(1 - len(decided) / 6)
    if not decided:  # a random model's answers name no program: every ask counts half
        assert s["accuracy"] == 0.5
