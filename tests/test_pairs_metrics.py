"""The pairs metrics of checkpoint selection and sweeps (raylib.tune.metrics.pairs_metric) on tiny trained
classifiers: each is the hand-computed function of a direct forward pass's scores."""

from __future__ import annotations

import json

import pytest

from tests.test_rerank_models import direct_logits, train_classifier
from tests.train_data import write_pairs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setting(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    pairs = write_pairs(root / "pairs.jsonl", tasks=3)
    return {"orm": train_classifier(tiny_model, root / "orm", labels=1),
            "pref": train_classifier(tiny_model, root / "pref", labels=2), "pairs": pairs,
            "rows": [json.loads(line) for line in pairs.read_text().splitlines()]}


def test_pairs_accuracy_and_auc_follow_the_reward_models_scores(setting):
    from raylib.tune.metrics import pairs_metric

    chosen = [direct_logits(setting["orm"], r["prompt"], r["chosen"])[0] for r in setting["rows"]]
    rejected = [direct_logits(setting["orm"], r["prompt"], r["rejected"])[0] for r in setting["rows"]]
    accuracy = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected)) / len(chosen)
    auc = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c in chosen for r in rejected) / len(chosen) ** 2
    assert pairs_metric(setting["orm"], "pairs_accuracy", setting["pairs"]) == pytest.approx(accuracy, abs=1e-9)
    assert pairs_metric(setting["orm"], "pairs_auc", setting["pairs"]) == pytest.approx(auc, abs=1e-9)


def test_preference_accuracy_counts_both_order_votes_for_the_chosen_program(setting):
    from raylib.train.data.reward import preference_prompt
    from raylib.tune.metrics import pairs_metric

    votes = []
    for r in setting["rows"]:
        first = direct_logits(setting["pref"], preference_prompt(r["prompt"], r["chosen"], r["rejected"]))
        second = direct_logits(setting["pref"], preference_prompt(r["prompt"], r["rejected"], r["chosen"]))
        votes += [1.0 if first[0] > first[1] else 0.5 if first[0] == first[1] else 0.0,  # chosen shown as A
                  1.0 if second[1] > second[0] else 0.5 if second[1] == second[0] else 0.0]  # chosen shown as B
    expected = sum(votes) / len(votes)
    assert pairs_metric(setting["pref"], "preference_accuracy", setting["pairs"]) == pytest.approx(expected)


def test_a_pairs_metric_without_a_pairs_file_is_refused_by_name(setting, tmp_path):
    from raylib.tune.metrics import checkpoint_metric
    from raylib.tune.settings import CodeMetricJobConfig

    with pytest.raises(ValueError, match="pairs_auc needs a pairs file"):
        checkpoint_metric(setting["orm"], "pairs_auc", {})
    with pytest.raises(ValueError, match="needs pairs"):
        CodeMetricJobConfig(metric="pairs_accuracy", pairs=str(tmp_path / "missing.jsonl"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "p", "chosen": "c"}\n')
    with pytest.raises(Exception, match=r"broken.jsonl:1: .*\[.rejected.\]"):
        checkpoint_metric(setting["orm"], "pairs_accuracy", {}, pairs=broken)
