"""The pure math of reranking (raylib/rerank/selection.py, raylib/rerank/metrics.py), against numbers worked out by
hand."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from raylib.data.problems import Problem
from raylib.rerank.base import Candidates, Score
from raylib.rerank.metrics import approximate_perms, best_of_k_curve, rank_at_k, summarize_rerank, top1
from raylib.rerank.selection import (
    FEATURE_NAMES,
    chain_order,
    cluster_scores,
    copeland_scores,
    group_features,
    majority_scores,
    normalise_code,
    round_robin_pairs,
    select,
    top_indices,
)
from sandbox.schema import StdioCase, StdioTests


def problem(task_id="t", difficulty=None, tags=()):
    return Problem(task_id=task_id, tests=StdioTests(cases=[StdioCase(output="1")]), difficulty=difficulty, tags=tags)


# ------------------------------------------------------------------------------------------------- selecting


def test_top_indices_are_the_ties_at_the_max_and_none_ranks_below_numbers():
    assert top_indices([0.2, 0.9, None, 0.9]) == [1, 3]
    assert top_indices([None, -5.0, None]) == [1]
    assert top_indices([None, None]) == [0, 1]  # nothing known: every candidate is as good


def test_select_takes_the_lowest_index_among_ties_and_reads_scores():
    candidates = Candidates(problem(), ["a", "b", "c"])
    assert select(candidates, [Score(0.5), Score(0.9), Score(0.9)]) == 1
    assert select(candidates, [None, 0.1, None]) == 1
    assert select(candidates, [Score(None), Score(None), Score(None)]) == 0
    with pytest.raises(ValueError, match="2 scores for 3 candidates"):
        select(candidates, [0.1, 0.2])


def test_chain_order_filters_by_the_first_verifier_then_ranks_by_the_next():
    first = [1, 1, None, 0, 1]
    second = [0.5, 0.9, 0.9, None, 0.9]
    # keys: c0 (1, .5)  c1 (1, .9)  c2 (None, .9)  c3 (0, None)  c4 (1, .9)
    # order: c2 (None on the first is lowest) < c3 < c0 < c1 = c4
    assert chain_order([first, second]) == [2.0, 3.0, 0.0, 1.0, 3.0]
    assert top_indices(chain_order([first, second])) == [1, 4]
    assert chain_order([[None, None], [None, None]]) == [None, None]
    with pytest.raises(ValueError, match="one score per candidate"):
        chain_order([[1, 2], [1]])


# ------------------------------------------------------------------------------------------------- agreement


def test_normalise_code_ignores_comments_docstrings_and_layout():
    a = 'def f(x):\n    """Add one."""\n    # the answer\n    return x+1\n'
    b = "def f( x ):\n\n    return (x + 1)   # trailing\n"
    c = "def f(x):\n    return x + 2\n"
    assert normalise_code(a) == normalise_code(b) == "def f(x): return x + 1"
    assert normalise_code(a) != normalise_code(c)
    # a class or function that is only a docstring keeps a valid body
    assert normalise_code('class A:\n    """doc"""\n') == "class A: pass"
    assert normalise_code('"""module doc"""\nx = 1') == "x = 1"


def test_normalise_code_falls_back_to_whitespace_when_it_does_not_parse():
    assert normalise_code("def f(:\n   return   1\n") == "def f(: return 1"


def test_majority_scores_count_the_candidates_sharing_a_key():
    assert majority_scores(["a", "b", "a", "c", "a"]) == [3, 1, 3, 1, 3]


def test_cluster_scores_are_cluster_sizes_and_unknown_behaviour_is_none():
    signatures = [("1", "2"), ("1", "2"), None, ("3",), None]
    assert cluster_scores(signatures) == [2.0, 2.0, None, 1.0, None]  # the two None do not form a cluster
    # CodeT's dual agreement: size * tests passed
    assert cluster_scores(signatures, [3, 3, 5, 1, 0]) == [6.0, 6.0, None, 1.0, None]


# ------------------------------------------------------------------------------------------------- Copeland


def test_copeland_counts_wins_minus_losses_from_both_orders():
    outcomes = [
        (0, 1, 1.0, 1.0),  # 2 of 2 for 0: 0 beats 1
        (0, 2, 1.0, 0.0),  # inconsistent (the judge prefers whoever is shown first): a tie
        (1, 2, 0.0, 0.5),  # 0.5 < 1: 2 beats 1
        (0, 3, 0.5, 0.5),  # unparseable twice: a tie
        (2, 3, 0.7, 0.6),  # probabilities, 1.3 > 1: 2 beats 3
        (1, 3, 0.7, 0.3),  # exactly 1 (0.9999999999999999 in floats): a tie
    ]
    # 0: +1 (over 1)         = 1
    # 1: -1 (to 0) -1 (to 2) = -2
    # 2: +1 (over 1) +1 (3)  = 2
    # 3: -1 (to 2)           = -1
    assert copeland_scores(4, outcomes) == [1.0, -2.0, 2.0, -1.0]
    as_mapping = {(i, j): (ab, ba) for i, j, ab, ba in outcomes}
    assert copeland_scores(4, as_mapping) == [1.0, -2.0, 2.0, -1.0]
    assert copeland_scores(5, outcomes)[4] == 0.0  # asked about nothing
    with pytest.raises(ValueError, match="distinct"):
        copeland_scores(2, [(0, 0, 1, 1)])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        copeland_scores(2, [(0, 1, 2, 1)])


def test_round_robin_without_a_cap_or_when_it_fits_is_every_pair():
    every = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert round_robin_pairs(4, None, seed=0) == every
    assert round_robin_pairs(4, 12, seed=0) == every  # 6 pairs x 2 orders = 12 comparisons
    assert round_robin_pairs(1, None, seed=0) == []


def test_round_robin_cap_counts_two_comparisons_per_pair_and_spreads_them():
    assert len(round_robin_pairs(4, 11, seed=0)) == 5  # 11 // 2
    assert len(round_robin_pairs(4, 5, seed=0)) == 2
    assert round_robin_pairs(4, 1, seed=0) == []
    # 4 comparisons = 2 pairs = one round of the circle method: every candidate exactly once
    assert sorted(Counter(x for p in round_robin_pairs(4, 4, seed=3) for x in p).values()) == [1, 1, 1, 1]
    # 12 comparisons of 6 candidates = 6 pairs = two whole rounds: everyone exactly twice
    assert sorted(Counter(x for p in round_robin_pairs(6, 12, seed=1) for x in p).values()) == [2] * 6
    # 20 comparisons of 8 = 10 pairs = 2 rounds (8 pairs) + 2 more pairs: everyone 2 or 3 times
    pairs = round_robin_pairs(8, 20, seed=7)
    counts = Counter(x for p in pairs for x in p)
    assert len(pairs) == len(set(pairs)) == 10 and all(i < j for i, j in pairs)
    assert set(counts.values()) == {2, 3} and len(counts) == 8
    assert round_robin_pairs(8, 20, seed=7) == pairs  # deterministic for a seed


# ------------------------------------------------------------------------------------------------- RVBS


def test_group_features_spelled_out():
    keys = ["a", "b", "a", "c", "b"]
    scores = [0.8, 0.2, 0.4, 0.5, 0.6]
    # group a: [0.8, 0.4] max .8 min .4 mean .6 std .2 (population) size 2
    # group b: [0.2, 0.6] max .6 min .2 mean .4 std .2             size 2
    # group c: [0.5]      max .5 min .5 mean .5 std 0              size 1
    # max over groups .5 .. .8 (range .3); mean .4 .. .6 (range .2); min .2 .. .5 (range .3)
    e = 1e-6
    expected = {
        "a": [0.3 / (0.3 + e), 0.2 / (0.2 + e), 1 / (0.2 + e), 2 / 5, (0.2 / (0.3 + e)) ** 2],
        "b": [0.1 / (0.3 + e), 0.0, 1 / (0.2 + e), 2 / 5, 0.0],
        "c": [0.0, 0.1 / (0.2 + e), 1 / e, 1 / 5, (0.3 / (0.3 + e)) ** 2],
    }
    groups, rows, names = group_features(keys, scores)
    assert names == list(FEATURE_NAMES) == ["rel_max", "rel_mean", "inv_std", "rel_size", "rel_min_sq"]
    assert groups == ["a", "b", "c"]  # order of first appearance
    for group, row in zip(groups, rows):
        assert row == pytest.approx(expected[group], rel=1e-9)


def test_group_features_of_equal_groups_are_zero_not_a_division_by_zero():
    groups, rows, _ = group_features(["x", "y"], [0.5, 0.5])
    assert rows == [[0.0, 0.0, 1e6, 0.5, 0.0], [0.0, 0.0, 1e6, 0.5, 0.0]]
    with pytest.raises(ValueError, match="base score"):
        group_features(["x", "y"], [0.5, None])


# ------------------------------------------------------------------------------------------------- metrics


def test_top1_counts_ties_as_the_mean_over_the_tied():
    assert top1([0.9, 0.9, 0.9, 0.1], [True, False, False, True]) == pytest.approx(1 / 3)
    assert top1([None, 0.2, None], [True, False, True]) == 0.0
    assert top1([None, None, None, None], [True, False, False, False]) == 0.25  # unknown: a random pick


def test_rank_at_k_small_case():
    scores, passed = [3, 2, 2, 1], [False, False, True, True]
    assert rank_at_k(scores, passed, 1) == 0.0  # top: candidate 0, fails
    assert rank_at_k(scores, passed, 2) == 0.5  # 0 and one of the tied {1, 2}, at random
    assert rank_at_k(scores, passed, 3) == 1.0  # 0, 1, 2
    assert rank_at_k(scores, passed, 10) == 1.0
    assert rank_at_k([1, 1], [False, False], 2) == 0.0


def test_rank_at_k_with_subsamples_is_deterministic_and_tends_to_the_exact_expectation():
    scores, passed = [3, 2, 2, 1, None, 0.5], [False, False, True, True, True, False]
    once = rank_at_k(scores, passed, 1, n=2, seeds=range(400))
    assert once == rank_at_k(scores, passed, 1, n=2, seeds=range(400))
    # rank@1 over random 2-subsets -> best-of-2's expected top-1 (computed exactly below)
    assert once == pytest.approx(best_of_k_curve(scores, passed, [2])[2]["top1"], abs=0.05)
    # a subsample of everything is a reordering: ties are taken in expectation, so it equals n=None
    assert rank_at_k(scores, passed, 2, n=6, seeds=[0, 1, 2]) == rank_at_k(scores, passed, 2)


def test_approximate_perms_as_coderm():
    assert approximate_perms(2, 4) == 51  # int(100 * (1 - 2/4) + 1)
    assert approximate_perms(4, 4) == 25  # 1, raised to the minimum
    assert approximate_perms(1, 1000) == 100  # 100.9 -> 100, the maximum
    assert approximate_perms(None, 10) == 25


def test_best_of_k_by_hand():
    scores, passed = [3, 2, 2, 1], [False, False, True, True]
    curve = best_of_k_curve(scores, passed, [1, 2, 9])
    # k=2, the 6 subsets: {0,x} x3 -> 0 (top 0 fails); {1,2} -> 0.5 (tie); {1,3} -> 0; {2,3} -> 1.  1.5 / 6
    assert curve[2]["top1"] == pytest.approx(0.25)
    assert curve[2]["pass@k"] == pytest.approx(1 - 1 / 6)  # 1 - C(2,2)/C(4,2)
    assert curve[1]["top1"] == pytest.approx(0.5) == curve[1]["pass@k"]  # one random candidate
    assert 9 not in curve  # more than there are


def test_best_of_k_exact_expectation_equals_brute_force_over_subsets():
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(1, 8)
        scores = [rng.choice([None, 0.0, 0.5, 1.0, 2.0]) for _ in range(n)]
        passed = [rng.random() < 0.4 for _ in range(n)]
        curve = best_of_k_curve(scores, passed, range(1, n + 1))
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(top1([scores[i] for i in s], [passed[i] for i in s]) for s in subsets) / len(subsets)
            assert curve[k]["top1"] == pytest.approx(brute, abs=1e-12)
            any_pass = sum(any(passed[i] for i in s) for s in subsets) / len(subsets)
            assert curve[k]["pass@k"] == pytest.approx(any_pass, abs=1e-12)
            # rank@k with random ties, checked by brute force over every order of the candidates
            if n <= 6:
                orders = list(itertools.permutations(range(n)))
                ranked = [sorted(order, key=lambda i: (scores[i] is not None, scores[i] or 0), reverse=True)
                          for order in orders]  # stable: ties keep the random order
                brute_rank = sum(any(passed[i] for i in r[:k]) for r in ranked) / len(orders)
                assert rank_at_k(scores, passed, k) == pytest.approx(brute_rank, abs=1e-12)


def test_summarize_rerank_by_hand():
    per_problem = {
        "A": {"v": ([0.9, 0.1, 0.5], [True, False, False]), "w": ([0.1, 0.9, 0.5], [True, False, False])},
        "B": {"v": ([None, None, None], [False, True, False]), "w": ([1, 2, 3], [False, True, False])},
    }
    problems = {"A": problem("A", "easy", ("dp",)), "B": problem("B", "hard", ("dp",))}
    s = summarize_rerank(per_problem, problems)
    v = s["v"]
    # top1: A 1 (0.9 passes), B 1/3 (all unknown: a random pick) -> 2/3
    assert v["top1"] == pytest.approx(2 / 3) == v["rank@1"]
    assert v["pass@1"] == pytest.approx(1 / 3)  # 1 of 3 passes in each
    assert v["pass@n"] == 1.0
    assert "rank@5" not in v  # only 3 candidates
    assert (v["tasks"], v["candidates"], v["all_unknown"]) == (2, 6, 1)
    assert v["by_difficulty"]["easy"]["top1"] == 1.0
    assert v["by_difficulty"]["hard"]["top1"] == pytest.approx(1 / 3)
    assert v["by_tag"]["dp"]["top1"] == pytest.approx(2 / 3)
    w = s["w"]
    assert w["top1"] == 0.0 and w["all_unknown"] == 0  # A picks 0.9 (fails), B picks 3 (fails)
    assert all(0.0 <= x <= 1.0 for x in (w["top1"], w["pass@1"], w["pass@n"], w["rank@1"]))
    assert "by_difficulty" not in summarize_rerank(per_problem)["v"]
    assert math.isclose(summarize_rerank(per_problem)["v"]["top1"], 2 / 3)


def test_the_difficulty_table_has_codeprms_shape():
    from raylib.rerank.report import difficulty_table

    per_problem = {
        "A": {"orm": ([0.9, 0.1, 0.5], [True, False, False])},
        "B": {"orm": ([0.2, 0.8, 0.1], [False, True, False])},
        "C": {"orm": ([0.1, 0.2, 0.3], [False, False, False])},
    }
    problems = {"A": problem("A", "hard", ()), "B": problem("B", "easy", ()), "C": problem("C", "medium", ())}
    table = difficulty_table({"verifiers": summarize_rerank(per_problem, problems)}).splitlines()
    # columns easy, medium, hard (in that order, whatever the file order), then all; pass@1 1/3 where a problem
    # has one passing sample of three; the ORM picks the passing one in A and B
    assert table[0] == "| | easy (1) | medium (1) | hard (1) | all (3) |"
    assert table[2] == "| pass@1 | 33.33% | 0.00% | 33.33% | 22.22% |"
    assert table[3] == "| pass@n | 100.00% | 0.00% | 100.00% | 66.67% |"
    assert table[4] == "| orm top-1 | 100.00% | 0.00% | 100.00% | 66.67% |"
    assert difficulty_table({"verifiers": summarize_rerank(per_problem)}) is None


# ------------------------------------------------------------------------------------------------- pool plans


def test_pools_are_planned_so_that_every_verifier_starts_on_a_small_cluster():
    from raylib.rerank.settings import VerifierSettings
    from raylib.rerank.stage import plan_pools

    settings = VerifierSettings()
    # 4 CPUs: the orm actor takes 1; the two sandbox pools share 3 (1.5 each, below their 2 workers: one actor each)
    plans = plan_pools(["public-tests", "clustering", "orm"], settings, cpus=4, gpus=0)
    assert [(p["num_cpus"], p["min_size"], p["max_size"]) for p in plans] == [(1.5, 1, 1), (1.5, 1, 1), (1.0, 1, 1)]
    assert sum(p["num_cpus"] * p["min_size"] for p in plans) <= 4
    # 16 CPUs: 15 left for one sandbox pool of 2-worker actors -> up to 7 of them; plain Python takes a quarter
    plans = plan_pools(["public-tests", "self-consistency", "orm"], settings, cpus=16.25, gpus=1)
    assert (plans[0]["num_cpus"], plans[0]["max_size"]) == (2.0, 7)
    assert plans[2]["num_gpus"] == 1 and plans[1]["num_cpus"] == 0.25
    with pytest.raises(ValueError, match="need 2 GPUs at once, the cluster has 1"):
        plan_pools(["orm", "pairwise"], settings, cpus=8, gpus=1)
    with pytest.raises(ValueError, match="the cluster has 1"):
        plan_pools(["orm", "public-tests"], VerifierSettings(reward_model={"cpus_per_actor": 1}), cpus=1, gpus=0)
