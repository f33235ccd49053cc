"""The verifiers that run candidates (raylib.rerank.verifiers.execution) and self-consistency, in the real sandbox:
public-test fractions, behaviour clusters on Python calls and on stdin/stdout (by the answers, not by what a program
prints itself or how far a run got), unknown scores without visible tests."""

from __future__ import annotations

import pytest

from raylib.data.problems import Problem, load_problems
from raylib.rerank.base import Candidates
from raylib.rerank.settings import ClusteringSettings, PublicTestsSettings
from raylib.rerank.verifiers.consistency import SelfConsistency
from raylib.rerank.verifiers.execution import BehaviourClusters, PublicTests
from sandbox.schema import AssertionTests, StdioCase, StdioTests

SANDBOX = {"uid_base": 65000}


@pytest.fixture(scope="module")
def humaneval():
    return load_problems("humaneval")


def test_public_tests_score_the_fraction_of_examples_passed(humaneval):
    problem = humaneval["HumanEval/0"]  # has_close_elements: two docstring examples
    verifier = PublicTests(PublicTestsSettings(time_limit_s=5), SANDBOX)
    try:
        [scores] = verifier.score([Candidates(problem, [
            problem.reference_solution,
            problem.prompt + "    return False\n",  # right on the first example only
            problem.prompt + "    raise ValueError\n",
            problem.prompt + "    while True:\n        pass\n"])])
    finally:
        verifier.close()
    assert [s.details["total"] for s in scores] == [2] * 4
    assert [s.value for s in scores] == [1.0, 0.5, 0.0, 0.0]
    assert scores[3].details["status"] == "timeout"


def test_behaviour_clusters_group_candidates_with_the_same_answers(humaneval):
    problem = humaneval["HumanEval/0"]
    same_as_reference = problem.prompt + (
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")
    verifier = BehaviourClusters(ClusteringSettings(time_limit_s=5), SANDBOX)
    try:
        [scores] = verifier.score([Candidates(problem, [
            problem.reference_solution, problem.prompt + "    return False\n", same_as_reference,
            problem.prompt + "    return True\n"])])
    finally:
        verifier.close()
    assert [s.value for s in scores] == [2, 1, 2, 1]
    assert scores[0].details["cluster"] == scores[2].details["cluster"] == 0  # the largest cluster first
    assert scores[0].details["inputs"] == 2


def test_what_a_candidate_prints_itself_does_not_split_it_from_its_cluster(humaneval):
    problem = humaneval["HumanEval/0"]
    chatty = problem.reference_solution + "\nprint('demo:', has_close_elements([1.0, 2.0], 0.5))\n"
    verifier = BehaviourClusters(ClusteringSettings(time_limit_s=5), SANDBOX)
    try:
        [scores] = verifier.score([Candidates(problem, [problem.reference_solution, chatty,
                                                        problem.prompt + "    return True\n"])])
    finally:
        verifier.close()
    assert [s.value for s in scores] == [2, 2, 1]


def test_a_candidate_that_dies_before_answering_is_clustered_by_how_it_ended(humaneval):
    problem = humaneval["HumanEval/0"]
    quits = problem.prompt + "    return True\nimport os\nos._exit(0)\n"  # exits before the driver asks anything
    loops = problem.prompt + "    while True:\n        pass\n"
    verifier = BehaviourClusters(ClusteringSettings(time_limit_s=1), SANDBOX)
    try:
        [scores] = verifier.score([Candidates(problem, [problem.reference_solution, quits, quits, loops, loops])])
    finally:
        verifier.close()
    assert [s.value for s in scores] == [1, 2, 2, 2, 2]  # no answers: its own cluster, not the reference's


def test_stdio_clusters_compare_outputs_on_the_public_inputs():
    cases = [StdioCase(input="1 2\n", output="3\n"), StdioCase(input="5 5\n", output="10\n")]
    problem = Problem(task_id="sum", prompt="Print a + b.", tests=StdioTests(cases=cases * 2),
                      public_tests=StdioTests(cases=cases))
    programs = ["a, b = map(int, input().split())\nprint(a + b)\n", "print(sum(map(int, input().split())))\n",
                "a, b = map(int, input().split())\nprint(a * b)\n"]
    clusters = BehaviourClusters(ClusteringSettings(time_limit_s=5), SANDBOX)
    public = PublicTests(PublicTestsSettings(time_limit_s=5), SANDBOX)
    try:
        [sizes] = clusters.score([Candidates(problem, programs)])
        [fractions] = public.score([Candidates(problem, programs)])
    finally:
        clusters.close()
        public.close()
    assert [s.value for s in sizes] == [2, 2, 1]
    assert [s.value for s in fractions] == [1.0, 1.0, 0.0]  # 1 * 2 and 5 * 5 fail both public cases


def test_without_visible_tests_or_inputs_the_scores_are_unknown():
    problem = Problem(task_id="hidden", prompt='def dec(x):\n    """Subtract one."""\n', entry_point="dec",
                      tests=AssertionTests(assertions=["assert dec(1) == 0"]))
    for verifier in (PublicTests(PublicTestsSettings(), SANDBOX), BehaviourClusters(ClusteringSettings(), SANDBOX)):
        try:
            [scores] = verifier.score([Candidates(problem, ["def dec(x):\n    return x - 1\n"])])
        finally:
            verifier.close()
        assert scores[0].value is None and scores[0].details["reason"]


def test_inputs_written_by_a_model_replace_the_visible_ones(humaneval, tmp_path):
    problem = humaneval["HumanEval/0"]
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"task_id": "HumanEval/0", "inputs": ["has_close_elements([1.0, 1.05], 0.1)"]}\n')
    verifier = BehaviourClusters(ClusteringSettings(inputs=str(inputs)), SANDBOX)
    try:
        # on the single written input, "return True" answers as the reference does
        [scores] = verifier.score([Candidates(problem, [problem.reference_solution,
                                                        problem.prompt + "    return True\n"])])
    finally:
        verifier.close()
    assert [s.value for s in scores] == [2, 2] and scores[0].details["inputs"] == 1


def test_self_consistency_counts_programs_equal_up_to_comments_and_layout(humaneval):
    problem = humaneval["HumanEval/0"]
    programs = ["def f(x):\n    return x + 1  # add\n", "def f(x):\n\n    return (x + 1)\n",
                "def f(x):\n    return x\n"]
    [scores] = SelfConsistency().score([Candidates(problem, programs)])
    assert [s.value for s in scores] == [2.0, 2.0, 1.0]
    assert scores[0].details["group"] == scores[1].details["group"] != scores[2].details["group"]
