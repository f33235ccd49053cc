"""Model verifiers on real (tiny) sequence classifiers trained in this session: the reward model's scores are a
direct forward pass's, P(correct) for two labels, Copeland over a preference classifier's both-order verdicts, and
clear errors for checkpoints that are not sequence classifiers."""

from __future__ import annotations

import json
import math

import pytest

from raylib.data.problems import load_problems
from raylib.rerank.base import Candidates
from raylib.rerank.settings import ModelVerifierSettings, PairwiseSettings, VerifierSettings, check_settings

pytestmark = pytest.mark.slow


def train_classifier(base: str, path, labels: int, steps: int = 8):
    """A tiny Llama with a sequence-classification head, trained a few steps so its head is not the initial one."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=labels)
    model.config.pad_token_id = tokenizer.pad_token_id
    texts = [("def add(a, b):", "    return a + b"), ("def add(a, b):", "    return a - b")]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        batch = tokenizer([t for t, _ in texts], [c for _, c in texts], return_tensors="pt", padding=True)
        logits = model(**batch).logits
        loss = (-logits[:, 0].mean() if labels == 1
                else torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def orm_model(tiny_model, tmp_path_factory):
    return train_classifier(tiny_model, tmp_path_factory.mktemp("orm"), labels=1)


@pytest.fixture(scope="module")
def two_label_model(tiny_model, tmp_path_factory):
    return train_classifier(tiny_model, tmp_path_factory.mktemp("pref"), labels=2)


@pytest.fixture(scope="module")
def items():
    problems = load_problems("humaneval")
    first, second = problems["HumanEval/0"], problems["HumanEval/2"]
    programs = [first.reference_solution, first.prompt + "    return False\n", first.prompt + "    pass\n"]
    others = [second.reference_solution, second.prompt + "    return 0\n"]
    return [Candidates(first, programs), Candidates(second, others)]


def direct_logits(path: str, first: str, second: str | None = None) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        return model(**tokenizer(first, second, return_tensors="pt")).logits[0].tolist()


def test_reward_model_scores_exactly_as_a_direct_forward_pass(orm_model, items):
    from raylib.rerank.verifiers.models import RewardModel

    verifier = RewardModel(ModelVerifierSettings(model=orm_model, batch_size=2))  # batches mix lengths: padding
    scores = verifier.score(items)
    expected = [direct_logits(orm_model, item.problem.prompt, program)[0]
                for item in items for program in item.programs]
    assert [s.value for row in scores for s in row] == pytest.approx(expected, abs=1e-4)
    assert len({round(s.value, 6) for row in scores for s in row}) > 1  # not a constant


def test_a_two_label_reward_model_scores_p_correct(two_label_model, items):
    from raylib.rerank.verifiers.models import RewardModel

    scores = RewardModel(ModelVerifierSettings(model=two_label_model, batch_size=4)).score(items[:1])
    for score, program in zip(scores[0], items[0].programs):
        wrong, right = direct_logits(two_label_model, items[0].problem.prompt, program)
        assert score.value == pytest.approx(math.exp(right) / (math.exp(wrong) + math.exp(right)), abs=1e-5)
        assert 0 < score.value < 1


def test_pairwise_copeland_follows_both_order_verdicts_of_the_classifier(two_label_model, items):
    from raylib.rerank.verifiers.models import PairwisePreference
    from raylib.train.data.reward import preference_prompt

    item = items[0]
    scores = PairwisePreference(PairwiseSettings(model=two_label_model, max_comparisons=None)).score([item])[0]
    prompt, programs = item.problem.prompt, item.programs
    wins = [0, 0, 0]
    for i in range(3):
        for j in range(i + 1, 3):
            a_first = direct_logits(two_label_model, preference_prompt(prompt, programs[i], programs[j]))
            b_first = direct_logits(two_label_model, preference_prompt(prompt, programs[j], programs[i]))
            votes = (a_first[0] > a_first[1]) + (b_first[1] > b_first[0])  # i better: as A, then as B
            if votes != 1:
                winner, loser = (i, j) if votes == 2 else (j, i)
                wins[winner] += 1
                wins[loser] -= 1
    assert [s.value for s in scores] == wins
    assert all(s.details["comparisons"] == 4 for s in scores)  # two pairs each, both orders


def test_the_pairwise_cap_limits_the_comparisons(two_label_model, items):
    from raylib.rerank.verifiers.models import PairwisePreference

    scores = PairwisePreference(PairwiseSettings(model=two_label_model, max_comparisons=2)).score(items[:1])[0]
    assert sum(s.details["comparisons"] for s in scores) == 2 * 2  # one pair asked in both orders, two candidates


def test_a_causal_lm_is_refused_naming_the_path_and_its_architecture(tiny_model):
    with pytest.raises(ValueError) as err:
        check_settings(["orm"], VerifierSettings(reward_model={"model": tiny_model}))
    assert tiny_model in str(err.value) and "LlamaForCausalLM" in str(err.value)
    assert "not a sequence classifier" in str(err.value)


def test_a_reward_model_with_the_wrong_number_of_outputs_is_refused(orm_model):
    with pytest.raises(ValueError, match="1 outputs; this verifier needs 2"):
        check_settings(["pairwise"], VerifierSettings(pairwise={"model": orm_model}))


def test_missing_checkpoints_and_selectors_are_named(tmp_path):
    with pytest.raises(ValueError, match="orm needs a reward model checkpoint: --model"):
        check_settings(["orm"], VerifierSettings())
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope'} does not exist"):
        check_settings(["pairwise"], VerifierSettings(pairwise={"model": str(tmp_path / "nope")}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model of type 'llama', not a sequence classifier"):
        check_settings(["orm"], VerifierSettings(reward_model={"model": str(tmp_path)}))
    with pytest.raises(ValueError, match="rvbs needs a selector"):
        check_settings(["orm", "rvbs"], VerifierSettings(reward_model={"model": str(tmp_path)}))


@pytest.mark.gpu
def test_the_reward_model_scores_on_the_gpu_as_on_the_cpu(orm_model, items):
    import torch

    from raylib.rerank.verifiers.models import RewardModel

    verifier = RewardModel(ModelVerifierSettings(model=orm_model, batch_size=2))
    assert verifier.device == "cuda" and next(verifier.model.parameters()).is_cuda
    on_gpu = [s.value for row in verifier.score(items) for s in row]
    verifier.model.to("cpu")
    verifier.device = "cpu"
    with torch.no_grad():
        on_cpu = [s.value for row in verifier.score(items) for s in row]
    assert on_gpu == pytest.approx(on_cpu, abs=1e-3)
