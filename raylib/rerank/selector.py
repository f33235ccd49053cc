"""The RVBS selector (LLMExecutor): a small classifier over answer groups that picks the group most likely correct.

    from raylib.rerank.selector import load_selector, selector_scores, train_selector, save_selector
    model = train_selector(rows, labels, kind="random_forest")     # rows: selection.group_features rows
    save_selector(model, "runs/selector/selector.joblib", {"base_verifier": "orm"})
    model, meta = load_selector("runs/selector/selector.joblib")
    selector_scores(model, keys, base_scores)    # every candidate gets its group's P(correct)

Training data (jobs/train_selector.py): for each problem, its candidates are grouped by answer (the normalised
program) and each group becomes one row of `selection.group_features` over the base verifier's scores, labelled 1
when the group's programs pass. As in LLMExecutor (train/RVBS/train_random_forest.py): a random forest of 100
trees, depth 5, balanced class weights; LightGBM is the alternative. scikit-learn, LightGBM and joblib are imported
inside the functions that use them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, Sequence

from raylib.files import DataError, read_records, write_json
from raylib.rerank.selection import FEATURE_NAMES, group_features, group_members, normalise_code
from sandbox.schema import INFRA_STATUS

__all__ = ["KINDS", "TaskCandidates", "cross_validate", "group_probabilities", "group_table", "load_selector",
           "read_candidate_rows", "read_rerank_output", "save_selector", "select_group", "selector_scores",
           "train_selector"]

KINDS = ("random_forest", "lightgbm")
SelectorKind = Literal["random_forest", "lightgbm"]
# {task_id: [(answer key, base score, passed), ...]}: one problem's candidates, in file order
TaskCandidates = dict[str, list[tuple[str, float, bool]]]


# ------------------------------------------------------------------------------------------------- the model


def train_selector(feature_rows: Sequence[Sequence[float]], labels: Sequence[int], kind: SelectorKind = "random_forest",
                   seed: int = 0):
    """Fit a classifier of P(group is correct).

    Args:
        feature_rows: one row per group, columns `selection.FEATURE_NAMES`.
        labels: 1 when the group's programs pass, else 0; both classes must occur.
        kind: "random_forest" (scikit-learn, 100 trees, max_depth 5, class_weight "balanced", LLMExecutor's) or
            "lightgbm" (LGBMClassifier, class_weight "balanced", otherwise its defaults).
        seed: the model's random_state.
    """
    if len(feature_rows) != len(labels):
        raise ValueError(f"{len(feature_rows)} feature rows for {len(labels)} labels")
    if set(labels) != {0, 1}:
        raise ValueError("a selector needs both correct and wrong groups to learn from, got labels "
                         f"{sorted(set(labels))}")
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=100, max_depth=5, class_weight="balanced", random_state=seed)
    elif kind == "lightgbm":
        from lightgbm import LGBMClassifier

        # one thread: the tables are small, and a fixed thread count keeps the fit reproducible
        model = LGBMClassifier(class_weight="balanced", random_state=seed, n_jobs=1, verbose=-1)
    else:
        raise ValueError(f"unknown selector kind {kind!r}, expected one of {KINDS}")
    import numpy as np

    model.fit(np.asarray(feature_rows, dtype=float), np.asarray(labels, dtype=int))
    return model


def group_probabilities(model, feature_rows: Sequence[Sequence[float]]) -> list[float]:
    """P(correct) of each group (the model's probability of class 1)."""
    import numpy as np

    probabilities = model.predict_proba(np.asarray(feature_rows, dtype=float))
    column = list(model.classes_).index(1)
    return [float(p) for p in probabilities[:, column]]


def select_group(model, feature_rows: Sequence[Sequence[float]]) -> int:
    """Index of the group with the highest P(correct); the first such group on ties (LLMExecutor's `idxmax`)."""
    probabilities = group_probabilities(model, feature_rows)
    return probabilities.index(max(probabilities))


def selector_scores(model, keys: Sequence[str], scores: Sequence[float]) -> list[float]:
    """Every candidate's score: its group's P(correct), groups by `keys` (answers) over base `scores`."""
    groups, rows, _ = group_features(keys, scores)
    probability = dict(zip(groups, group_probabilities(model, rows)))
    return [probability[key] for key in keys]


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save_selector(model, path: str | Path, meta: dict | None = None) -> Path:
    """Write the model with joblib (atomically) and a JSON sidecar beside it (same name, .json): feature names,
    kind, library versions and `meta`."""
    import joblib
    import sklearn

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "lightgbm" if type(model).__module__.startswith("lightgbm") else "random_forest"
    sidecar = {**(meta or {}), "kind": kind, "feature_names": list(FEATURE_NAMES),
               "sklearn_version": sklearn.__version__}
    if kind == "lightgbm":
        import lightgbm

        sidecar["lightgbm_version"] = lightgbm.__version__
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    joblib.dump(model, tmp)
    os.replace(tmp, path)
    write_json(_sidecar(path), sidecar)
    return path


def load_selector(path: str | Path):
    """(model, sidecar dict) of a `save_selector` file.

    Raises:
        DataError: the file or its sidecar is missing, or the sidecar's feature names are not this code's
            `FEATURE_NAMES` (a model trained on other columns would silently score garbage).
    """
    import joblib
    import sklearn

    path = Path(path)
    if not path.is_file():
        raise DataError(path, 0, "selector file not found")
    sidecar_path = _sidecar(path)
    if not sidecar_path.is_file():
        raise DataError(sidecar_path, 0, "selector sidecar not found (written by save_selector beside the model)")
    meta = json.loads(sidecar_path.read_text())
    if meta.get("feature_names") != list(FEATURE_NAMES):
        raise DataError(sidecar_path, 0, f"the selector was trained on features {meta.get('feature_names')}, "
                        f"this code computes {list(FEATURE_NAMES)}: retrain it")
    if meta.get("sklearn_version") != sklearn.__version__:
        import warnings

        warnings.warn(f"{path} was saved with scikit-learn {meta.get('sklearn_version')}, this is "
                      f"{sklearn.__version__}", stacklevel=2)
    return joblib.load(path), meta


# ------------------------------------------------------------------------------------------------- training data


def _field(path, line: int, row: dict, name: str, kinds: type | tuple, what: str):
    """row[name], checked to be of `kinds` (a bool is not a number here)."""
    if name not in row:
        raise DataError(path, line, f"missing field {name!r} ({what})")
    value = row[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
        raise DataError(path, line, f"field {name!r} must be {what}, got {value!r}")
    return value


def read_candidate_rows(path: str | Path) -> TaskCandidates:
    """A JSONL of per-candidate rows {"task_id", "answer" (optional: else "program", grouped by
    `normalise_code`), "score" (the base verifier's, a number), "passed" (bool)} -> {task_id: candidates}.

    Raises:
        DataError: naming the file, line and field of a bad row.
    """
    tasks: TaskCandidates = {}
    for line, row in read_records(path):
        task_id = _field(path, line, row, "task_id", str, "a string")
        if "answer" in row:
            answer = _field(path, line, row, "answer", str, "the text candidates are grouped on")
        elif "program" in row:
            answer = normalise_code(_field(path, line, row, "program", str, "a program"))
        else:
            raise DataError(path, line, "missing field 'answer' (or 'program' to group on)")
        score = float(_field(path, line, row, "score", (int, float), "a number (the base verifier's score)"))
        passed = _field(path, line, row, "passed", bool, "true or false")
        tasks.setdefault(task_id, []).append((answer, score, passed))
    if not tasks:
        raise DataError(path, 0, "no rows")
    return tasks


def read_rerank_output(directory: str | Path, base_verifier: str, results: str | Path) -> tuple[TaskCandidates, int]:
    """A rerank output directory's scores.jsonl rows {"task_id", "sample_id", "verifier", "score", "details"} of
    `base_verifier`, joined on (task_id, sample_id) with results.jsonl rows {"task_id", "sample_id", "passed",
    "program"} (grouped by `normalise_code` of the program).

    Returns:
        ({task_id: candidates}, how many tasks were left out because some candidate's base score is None).
    """
    results = Path(results)
    results = results / "results.jsonl" if results.is_dir() else results
    outcomes: dict[tuple[str, object], tuple[str, bool, str | None]] = {}
    for line, row in read_records(results):
        task_id = _field(results, line, row, "task_id", str, "a string")
        if "sample_id" not in row:
            raise DataError(results, line, "missing field 'sample_id'")
        if row.get("status") == INFRA_STATUS:
            continue  # not a verdict: the sandbox failed (the evaluation job retries these)
        passed = _field(results, line, row, "passed", bool, "true or false")
        program = _field(results, line, row, "program", str, "a program")
        outcomes[(task_id, row["sample_id"])] = (normalise_code(program), passed, row.get("program_sha"))
    scores_path = Path(directory) / "scores.jsonl"
    tasks: TaskCandidates = {}
    unknown: set[str] = set()
    for line, row in read_records(scores_path):
        verifier = _field(scores_path, line, row, "verifier", str, "a verifier name")
        if verifier != base_verifier:
            continue
        task_id = _field(scores_path, line, row, "task_id", str, "a string")
        if "sample_id" not in row or "score" not in row:
            raise DataError(scores_path, line, f"missing field {'sample_id' if 'sample_id' not in row else 'score'!r}")
        key = (task_id, row["sample_id"])
        if key not in outcomes or (row.get("program_sha") and outcomes[key][2]
                                   and row["program_sha"] != outcomes[key][2]):
            raise DataError(scores_path, line, f"no verdict for task_id {task_id!r}, sample_id {row['sample_id']!r} "
                            f"(with this program) in {results}")
        if row["score"] is None:
            unknown.add(task_id)
            continue
        score = float(_field(scores_path, line, row, "score", (int, float), "a number or null"))
        answer, passed, _ = outcomes[key]
        tasks.setdefault(task_id, []).append((answer, score, passed))
    for task_id in unknown:
        tasks.pop(task_id, None)
    if not tasks:
        raise DataError(scores_path, 0, f"no scored rows of verifier {base_verifier!r}")
    return tasks, len(unknown)


def group_table(tasks: TaskCandidates) -> tuple[list[list[float]], list[int], list[str], list[float]]:
    """One training row per (task, answer group).

    A group is labelled 1 when at least half of its candidates passed (identical programs agree unless a test is
    flaky).

    Returns:
        (feature rows, labels, the task of each row, each group's best base score), tasks in sorted order.
    """
    rows, labels, row_tasks, best_scores = [], [], [], []
    for task_id in sorted(tasks):
        candidates = tasks[task_id]
        keys = [answer for answer, _, _ in candidates]
        scores = [score for _, score, _ in candidates]
        groups, features, _ = group_features(keys, scores)
        members = group_members(keys)
        for key, feature_row in zip(groups, features):
            passed = [candidates[i][2] for i in members[key]]
            rows.append(feature_row)
            labels.append(int(2 * sum(passed) >= len(passed)))
            row_tasks.append(task_id)
            best_scores.append(max(scores[i] for i in members[key]))
    return rows, labels, row_tasks, best_scores


# ------------------------------------------------------------------------------------------------- evaluation


def cross_validate(rows: list[list[float]], labels: list[int], row_tasks: list[str], best_scores: list[float],
                   kind: SelectorKind = "random_forest", seed: int = 0, folds: int = 5) -> dict:
    """Cross-validated quality of the selector, folds made of whole tasks (scikit-learn GroupKFold), so a task's
    groups are never both trained on and judged.

    Returns:
        `folds`; `group_accuracy` and `group_auc` over every group's out-of-fold P(correct) (threshold 0.5; AUC None
        when only one class occurs); per task, the fraction whose chosen group passes: `select_accuracy` (highest
        out-of-fold P(correct)), `base_accuracy` (the group holding the base verifier's best score) and
        `majority_accuracy` (the largest group), each the first group on ties.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    tasks = sorted(set(row_tasks))
    folds = min(folds, len(tasks))
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 tasks, got {len(tasks)}")
    features, targets = np.asarray(rows, dtype=float), np.asarray(labels, dtype=int)
    predicted = np.zeros(len(rows))
    for train, held_out in GroupKFold(n_splits=folds).split(features, targets, groups=row_tasks):
        if len(set(targets[train])) < 2:  # nothing to learn in this fold: predict its only class
            predicted[held_out] = float(targets[train][0])
            continue
        model = train_selector(features[train], targets[train], kind, seed)
        predicted[held_out] = group_probabilities(model, features[held_out])
    by_task: dict[str, list[int]] = {}
    for index, task_id in enumerate(row_tasks):
        by_task.setdefault(task_id, []).append(index)

    def pick_rate(value) -> float:
        chosen = [max(indices, key=lambda i: (value(i), -i)) for indices in by_task.values()]
        return sum(labels[i] for i in chosen) / len(chosen)

    size_column = FEATURE_NAMES.index("rel_size")
    return {
        "folds": folds,
        "groups": len(rows),
        "tasks": len(tasks),
        "group_accuracy": float(np.mean((predicted >= 0.5) == targets)),
        "group_auc": float(roc_auc_score(targets, predicted)) if len(set(labels)) == 2 else None,
        "select_accuracy": pick_rate(lambda i: predicted[i]),
        "base_accuracy": pick_rate(lambda i: best_scores[i]),
        "majority_accuracy": pick_rate(lambda i: rows[i][size_column]),
    }
