"""The pure math of reranking: pick a candidate from scores, and the relative scores some verifiers are built from.

    from raylib.rerank.selection import (chain_order, cluster_scores, copeland_scores, group_features,
                                         majority_scores, normalise_code, round_robin_pairs, select, top_indices)
    top_indices([0.2, 0.9, None, 0.9])                    # [1, 3]: tied at the max; None ranks below every number
    select(candidates, scores)                            # 1: the reranker, lowest index among ties
    chain_order([[1, 1, 0], [0.2, 0.7, 0.9]])             # [1.0, 2.0, 0.0]: filter by the first, rank by the second
    majority_scores([normalise_code(p) for p in programs])    # self-consistency: how many share the program
    cluster_scores([("1", "2"), ("1", "2"), None])        # [2, 2, None]: behaviour clusters (AlphaCode/CodeT)
    pairs = round_robin_pairs(8, cap=20, seed=0)          # Copeland: which pairs to ask a judge, both orders
    copeland_scores(8, [(i, j, vote_ab, vote_ba), ...])   # wins - losses
    groups, rows, names = group_features(keys, scores)    # RVBS (LLMExecutor) group features for the selector

Plain functions over plain data: no numpy, no Ray, no torch. Higher scores are better everywhere; None means
"unknown" and ranks below every number.
"""

from __future__ import annotations

import ast
import itertools
import math
import random
import statistics
from collections import Counter
from typing import Iterable, Mapping, Sequence

from raylib.rerank.base import Candidates, Score

__all__ = ["FEATURE_NAMES", "chain_order", "cluster_scores", "copeland_scores", "copeland_tallies", "group_features",
           "group_members",
           "majority_scores", "normalise_code", "round_robin_pairs", "select", "top_indices"]

# LLMExecutor's RVBS feature columns, in its order (train/RVBS/train_random_forest.py `feature_cols`)
FEATURE_NAMES = ("rel_max", "rel_mean", "inv_std", "rel_size", "rel_min_sq")
_EPS = 1e-6  # LLMExecutor's guard in min-max normalisation and 1/std
_TIE_TOLERANCE = 1e-9  # Copeland: vote sums within this of 1 are a tie (0.7 + 0.3 is 0.9999999999999999)


# ------------------------------------------------------------------------------------------------- selecting


def top_indices(values: Sequence[float | None]) -> list[int]:
    """Indices of the values tied at the maximum, ascending. None ranks below every number; when every value is None
    (nothing is known) every index is returned."""
    known = [v for v in values if v is not None]
    if not known:
        return list(range(len(values)))
    best = max(known)
    return [i for i, v in enumerate(values) if v is not None and v == best]


def select(candidates: Candidates, scores: Sequence[Score | float | None]) -> int:
    """The reranker: the index of the best-scored candidate, the lowest index among ties (samples are drawn
    independently, so the first of the tied ones is as good as a random one, and reproducible).

    Args:
        candidates: the problem and its programs.
        scores: one `Score` (or plain value) per program, in order.
    """
    if len(scores) != len(candidates.programs):
        raise ValueError(f"{len(scores)} scores for {len(candidates.programs)} candidates of "
                         f"{candidates.problem.task_id}")
    if not scores:
        raise ValueError(f"{candidates.problem.task_id} has no candidates to select from")
    values = [s.value if isinstance(s, Score) else s for s in scores]
    return top_indices(values)[0]


def chain_order(score_lists: Sequence[Sequence[float | None]]) -> list[float | None]:
    """"Filter by one verifier, rank by the next": one combined score per candidate, ordering the candidates
    lexicographically by the first verifier's value, then the second's among those tied on the first, and so on.

    Args:
        score_lists: one list per verifier (in chain order), each with one value per candidate.

    Returns:
        The dense rank of each candidate's key (value_1, value_2, ...) among the distinct keys, as a float: 0.0 for
        the lowest key, 1.0 for the next distinct one, ...; candidates with equal keys share a rank, so
        `top_indices` on the result gives exactly the lexicographic ties at the top. Within each verifier None
        ranks below every number. When every value of every verifier is None the result is all None (unknown).
    """
    if not score_lists:
        raise ValueError("chain_order needs at least one verifier's scores")
    n = len(score_lists[0])
    if any(len(values) != n for values in score_lists):
        raise ValueError(f"every verifier needs one score per candidate, got lengths {[len(v) for v in score_lists]}")
    if all(v is None for values in score_lists for v in values):
        return [None] * n
    # (known?, value): a None sorts below every number of the same verifier
    keys = [tuple((values[i] is not None, values[i] if values[i] is not None else 0.0) for values in score_lists)
            for i in range(n)]
    rank = {key: float(r) for r, key in enumerate(sorted(set(keys)))}
    return [rank[key] for key in keys]


# ------------------------------------------------------------------------------------------------- agreement


def normalise_code(program: str) -> str:
    """The program as self-consistency compares it: parsed and unparsed (comments and formatting gone) without
    docstrings, whitespace runs collapsed to one space. Text that does not parse is only whitespace-normalised."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return " ".join(program.split())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                    str):
                node.body = node.body[1:] or ([ast.Pass()] if not isinstance(node, ast.Module) else [])
    return " ".join(ast.unparse(tree).split())


def majority_scores(keys: Sequence[str]) -> list[int]:
    """Self-consistency (FTTT's baseline): each candidate's score is how many candidates share its key (itself
    included), e.g. its `normalise_code` text."""
    counts = Counter(keys)
    return [counts[key] for key in keys]


def cluster_scores(signatures: Sequence[tuple | None],
                   tests_passed: Sequence[int | None] | None = None) -> list[float | None]:
    """Behaviour clustering (AlphaCode; CodeT's dual agreement when `tests_passed` is given).

    Candidates with identical output signatures (their outputs on the same inputs, errors included) form a cluster.

    Args:
        signatures: one per candidate; None when the candidate could not be run at all (nothing is known of its
            behaviour, so it joins no cluster and scores None: unknown, below every number. Lumping such
            candidates together would let many broken ones outvote a working one).
        tests_passed: optional, one per candidate: how many (generated) tests the cluster's behaviour passes.

    Returns:
        The cluster size; with `tests_passed`, CodeT's score: cluster size * tests passed (None when either is
        unknown).
    """
    if tests_passed is not None and len(tests_passed) != len(signatures):
        raise ValueError(f"{len(tests_passed)} test counts for {len(signatures)} candidates")
    sizes = Counter(s for s in signatures if s is not None)
    scores: list[float | None] = []
    for i, signature in enumerate(signatures):
        if signature is None:
            scores.append(None)
        elif tests_passed is None:
            scores.append(float(sizes[signature]))
        else:
            scores.append(None if tests_passed[i] is None else float(sizes[signature] * tests_passed[i]))
    return scores


# ------------------------------------------------------------------------------------------------- Copeland


def round_robin_pairs(n: int, cap: int | None = None, seed: int = 0) -> list[tuple[int, int]]:
    """Which unordered pairs (i, j), i < j, of n candidates to compare.

    Every pair is asked in both orders, so a pair costs 2 comparisons. Without a cap, or when all n(n-1)/2 pairs fit
    in `cap` comparisons, every pair is returned. Otherwise cap // 2 pairs, spread evenly: the full round robin is
    split into rounds (the circle method: each round pairs every candidate at most once), whole rounds are taken
    in a seeded order while they fit and then a seeded subset of the next round, so every candidate is in r or r + 1
    of the pairs (one fewer for the one sitting out a round when n is odd). Deterministic for a seed.

    Returns:
        The chosen pairs, sorted.
    """
    if n < 0 or (cap is not None and cap < 0):
        raise ValueError(f"round_robin_pairs needs n >= 0 and cap >= 0, got n={n}, cap={cap}")
    total = n * (n - 1) // 2
    if cap is None or 2 * total <= cap:
        return list(itertools.combinations(range(n), 2))
    budget = cap // 2
    rng = random.Random(seed)
    rounds = _circle_rounds(n)
    rng.shuffle(rounds)
    chosen: list[tuple[int, int]] = []
    for pairs in rounds:
        if len(chosen) + len(pairs) <= budget:
            chosen.extend(pairs)
        else:
            chosen.extend(rng.sample(pairs, budget - len(chosen)))
            break
    return sorted(chosen)


def _circle_rounds(n: int) -> list[list[tuple[int, int]]]:
    """The circle method: n - 1 rounds (n rounds when n is odd; a dummy player marks who sits out) in which every
    pair meets exactly once."""
    players = list(range(n)) + ([None] if n % 2 else [])
    m = len(players)
    rounds = []
    for _ in range(m - 1):
        pairs = [(players[k], players[m - 1 - k]) for k in range(m // 2)]
        rounds.append([(min(a, b), max(a, b)) for a, b in pairs if a is not None and b is not None])
        players = [players[0], players[-1], *players[1:-1]]  # fix the first, rotate the rest
    return rounds


def copeland_scores(n: int, outcomes: Iterable[tuple[int, int, float, float]]
                    | Mapping[tuple[int, int], tuple[float, float]]) -> list[float]:
    """Copeland scores (wins - losses) of n candidates from pairwise judgements asked in both orders.

    Args:
        outcomes: one (i, j, vote_ab, vote_ba) per asked pair, or {(i, j): (vote_ab, vote_ba)}. vote_ab: how
            much the judge prefers i when i is shown first (as A): 1 = i better, 0 = j better, 0.5 = tie or an
            unparseable answer, or a probability. vote_ba: the same when i is shown second (as B), already turned
            around to mean "i is better".

    Returns:
        One score per candidate. A pair's winner is i when vote_ab + vote_ba > 1, j when it is < 1, and the pair is a
        tie when it is exactly 1 (within 1e-9): so a judge that always prefers whichever is shown first (1 then 0)
        produces a tie, not a win. Winner +1, loser -1, a tie 0 for both; candidates in no pair score 0. A pair
        listed twice counts twice.
    """
    return [float(t["wins"] - t["losses"]) for t in copeland_tallies(n, outcomes)]


def copeland_tallies(n: int, outcomes: Iterable[tuple[int, int, float, float]]
                     | Mapping[tuple[int, int], tuple[float, float]]) -> list[dict]:
    """Per candidate, the pairs it won, lost and tied (decided as `copeland_scores` decides them) and the
    comparisons it took part in (two per pair: both orders): {"wins", "losses", "ties", "comparisons"}."""
    if isinstance(outcomes, Mapping):
        outcomes = [(i, j, *votes) for (i, j), votes in outcomes.items()]
    tallies = [{"wins": 0, "losses": 0, "ties": 0, "comparisons": 0} for _ in range(n)]
    for i, j, vote_ab, vote_ba in outcomes:
        if not (0 <= i < n and 0 <= j < n) or i == j:
            raise ValueError(f"pair ({i}, {j}) is not two distinct candidates of {n}")
        if not (0 <= vote_ab <= 1 and 0 <= vote_ba <= 1):
            raise ValueError(f"votes must lie in [0, 1], got {vote_ab}, {vote_ba} for pair ({i}, {j})")
        margin = vote_ab + vote_ba - 1
        if abs(margin) <= _TIE_TOLERANCE:
            tallies[i]["ties"] += 1
            tallies[j]["ties"] += 1
        else:
            winner, loser = (i, j) if margin > 0 else (j, i)
            tallies[winner]["wins"] += 1
            tallies[loser]["losses"] += 1
        tallies[i]["comparisons"] += 2
        tallies[j]["comparisons"] += 2
    return tallies


# ------------------------------------------------------------------------------------------------- RVBS


def group_members(keys: Sequence[str]) -> dict[str, list[int]]:
    """{key: indices of the candidates with that key}, keys in order of first appearance (LLMExecutor's
    `get_most_common`)."""
    members: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    return members


def group_features(keys: Sequence[str], scores: Sequence[float]) -> tuple[list[str], list[list[float]], list[str]]:
    """RVBS group features (LLMExecutor, train/RVBS/train_random_forest.py `generate_sample_data` and
    `compute_relative_features`), for one problem.

    Candidates with identical answers (keys) form a group; per group, over its candidates' base scores: max, min,
    mean, std (population std, numpy's default `np.std`) and size. The features, relative to the problem's groups:

        rel_max    = (max - min over groups of max) / (max over groups of max - min over groups of max + 1e-6)
        rel_mean   = the same for mean
        inv_std    = 1 / (std + 1e-6)
        rel_size   = size / number of candidates
        rel_min_sq = rel_min ** 2, rel_min the same min-max normalisation of min

    The +1e-6 is LLMExecutor's: when every group has the same value the feature is 0 for all (not a division by 0),
    and the top group gets 1/(1 + 1e-6 / range), a hair below 1.

    Returns:
        (group keys in order of first appearance, one feature row per group, the feature names in row order).
    """
    if len(keys) != len(scores):
        raise ValueError(f"{len(keys)} answers for {len(scores)} scores")
    if not keys:
        raise ValueError("group_features needs at least one candidate")
    unknown = [i for i, s in enumerate(scores) if s is None or (isinstance(s, float) and math.isnan(s))]
    if unknown:
        raise ValueError(f"RVBS needs every candidate's base score; candidates {unknown} have none")
    members = group_members(keys)
    stats = []
    for indices in members.values():
        values = [float(scores[i]) for i in indices]
        stats.append((max(values), min(values), statistics.fmean(values), statistics.pstdev(values), len(values)))

    def relative(column: int) -> list[float]:
        values = [row[column] for row in stats]
        low, high = min(values), max(values)
        return [(v - low) / (high - low + _EPS) for v in values]

    rel_max, rel_min, rel_mean = relative(0), relative(1), relative(2)
    rows = [[rel_max[g], rel_mean[g], 1 / (std + _EPS), size / len(keys), rel_min[g] ** 2]
            for g, (_, _, _, std, size) in enumerate(stats)]
    return list(members), rows, list(FEATURE_NAMES)
