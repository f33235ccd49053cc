"""Verifiers that are trained models: an outcome / scalar reward model (orm) and a pairwise preference classifier
(pairwise, CodeFavor), both Hugging Face sequence classifiers.

    from raylib.rerank.verifiers.models import PairwisePreference, RewardModel, load_classifier
    orm = RewardModel(ModelVerifierSettings(model="runs/orm/model"))
    orm.score([Candidates(problem, programs)])        # Score(the model's score, {})
    model, tokenizer = load_classifier("runs/pref/model", labels=(2,))   # check_classifier: configs only

orm reads the task and the program as a text pair, as jobs/train_rm.py trains it (raylib.train.data.reward): one
output is the score itself (a Bradley-Terry or ORM logit), two outputs give P(correct) = softmax(logits)[1].
pairwise reads CodeFavor's prompt (task, code A, code B; raylib.train.data.reward.preference_prompt) and says which
is better (class 0: A, 1: B); candidates are ranked by Copeland score over a round robin asked in both orders, at
most `max_comparisons` comparisons per problem. Forward passes batch one problem's inputs at a time, so a score does
not depend on what else shared the batch (a resumed run gives the same numbers). Checkpoints may be full models or
PEFT adapters. torch and
transformers are imported when a verifier is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from raylib.rerank.base import Candidates, Score
from raylib.rerank.selection import copeland_scores, copeland_tallies, round_robin_pairs

__all__ = ["PairwisePreference", "RewardModel", "check_classifier", "load_classifier"]


def check_classifier(path: str | Path, labels: tuple[int, ...]) -> None:
    """Check, from its config files alone (no weights read), that `path` holds a sequence classifier with one of
    `labels` outputs (a PEFT adapter: one for sequence classification).

    Raises:
        FileNotFoundError: no such directory, or no config in it.
        ValueError: it is not a sequence classifier (names the path and the architecture found), or has another
            number of outputs.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model checkpoint {path} does not exist (or is not a directory)")
    adapter = path / "adapter_config.json"
    if adapter.exists():
        task_type = json.loads(adapter.read_text()).get("task_type")
        if task_type != "SEQ_CLS":
            raise ValueError(f"{path} is a PEFT adapter for {task_type}, not a sequence classifier (SEQ_CLS)")
        return
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no config.json: not a Hugging Face model directory")
    config = json.loads((path / "config.json").read_text())
    architectures = config.get("architectures") or [f"model of type {config.get('model_type')!r}"]
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ValueError(f"{path} holds a {', '.join(architectures)}, not a sequence classifier "
                         "(...ForSequenceClassification): use a checkpoint written by jobs/train_rm.py or "
                         "jobs/train_pref.py, or another Hugging Face sequence classifier")
    outputs = len(config.get("id2label") or {}) or config.get("num_labels") or 2
    if outputs not in labels:
        raise ValueError(f"{path} is a sequence classifier with {outputs} outputs; this verifier needs "
                         f"{' or '.join(map(str, labels))}")


def load_classifier(path: str | Path, labels: tuple[int, ...]):
    """(model in eval mode, tokenizer) of the sequence classifier at `path` with one of `labels` outputs; raises as
    `check_classifier` does."""
    import transformers

    from raylib.train.adapters import load_trained

    check_classifier(path, labels)
    path = Path(path)
    if (path / "adapter_config.json").exists():
        model = load_trained(path, "preference" if labels == (2,) else "reward")  # the head train_rm/train_pref give
    else:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:  # batches of more than one sequence need it (last-token pooling)
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


class _Classifier:
    labels: tuple[int, ...]

    def __init__(self, settings):
        import torch

        self.settings = settings
        self.model, self.tokenizer = load_classifier(settings.model, self.labels)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)

    def logits(self, inputs: list[list[int]]) -> list[list[float]]:
        """The model's logits for each token sequence, in batches of similar length (right-padded)."""
        import torch

        from raylib.train.batching import collate_classification, sequence_logits

        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        out: list[list[float]] = [[] for _ in inputs]
        size = self.settings.batch_size
        with torch.no_grad():
            for start in range(0, len(order), size):
                chunk = order[start:start + size]
                batch = collate_classification([{"input_ids": inputs[i], "label": 0} for i in chunk],
                                               self.tokenizer.pad_token_id)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                rows = sequence_logits(self.model, batch).float().cpu().tolist()
                for i, row in zip(chunk, rows):
                    out[i] = row
        return out

    def encode_pair(self, task: str, program: str) -> list[int]:
        """Token ids of (task, program) as a text pair, as jobs/train_rm.py reads them; over max_length the longer
        of the two is cut."""
        return list(self.tokenizer(task, program, truncation="longest_first",
                                   max_length=self.settings.max_length)["input_ids"])

    def encode_preference(self, task: str, code_a: str, code_b: str, criteria: str = "") -> list[int]:
        """Token ids of CodeFavor's prompt (raylib.train.data.reward.preference_prompt); over max_length both programs
        are shortened alike, so the end of the text (code B) is not what gets lost."""
        from raylib.train.data.reward import preference_prompt

        limit = self.settings.max_length
        ids = self.tokenizer(preference_prompt(task, code_a, code_b, criteria))["input_ids"]
        for _ in range(4):
            if len(ids) <= limit:
                break
            keep = 0.95 * limit / len(ids)
            code_a, code_b = code_a[:int(len(code_a) * keep)], code_b[:int(len(code_b) * keep)]
            ids = self.tokenizer(preference_prompt(task, code_a, code_b, criteria))["input_ids"]
        return list(ids[:limit])  # still too long: the task alone is

    def close(self) -> None:
        self.model = None


class RewardModel(_Classifier):
    """orm: the model's score of (task, program); 1 output: the logit, 2 outputs: P(correct)."""

    name = "orm"
    labels = (1, 2)

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        return [[Score(v, {}) for v in self.values([(item.problem.prompt, p) for p in item.programs])]
                for item in batch]

    def values(self, texts: list[tuple[str, str]]) -> list[float]:
        """The score of each (task, program): the logit, or P(correct) with 2 outputs."""
        return [row[0] if len(row) == 1 else _p_second(row) for row in self.logits([self.encode_pair(task, program)
                                                                                     for task, program in texts])]


class PairwisePreference(_Classifier):
    """pairwise: Copeland score over both-order comparisons (details: wins, losses, ties, comparisons)."""

    name = "pairwise"
    labels = (2,)

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        out = []
        for item in batch:
            pairs = round_robin_pairs(len(item.programs), self.settings.max_comparisons, self.settings.seed)
            inputs = []
            for i, j in pairs:
                a, b = item.programs[i], item.programs[j]
                inputs.append(self.encode_preference(item.problem.prompt, a, b))
                inputs.append(self.encode_preference(item.problem.prompt, b, a))
            logits = iter(self.logits(inputs))
            outcomes = {}
            for i, j in pairs:
                i_first, j_first = next(logits), next(logits)
                # votes that i is better: shown as A (class 0 wins), then shown as B (class 1 wins)
                outcomes[(i, j)] = (_vote(i_first[0], i_first[1]), _vote(j_first[1], j_first[0]))
            copeland = copeland_scores(len(item.programs), outcomes)
            out.append([Score(value, details)
                        for value, details in zip(copeland, copeland_tallies(len(item.programs), outcomes))])
        return out

    def preference_votes(self, triples: list[tuple[str, str, str]]) -> float:
        """The share of its votes, over each (task, chosen, rejected) asked in both orders, for the chosen program."""
        logits = iter(self.logits([ids for task, chosen, rejected in triples
                                   for ids in (self.encode_preference(task, chosen, rejected),
                                               self.encode_preference(task, rejected, chosen))]))
        votes = [_vote(first[0], first[1]) + _vote(second[1], second[0]) for first, second in zip(logits, logits)]
        return sum(votes) / (2 * len(votes))


def _p_second(row: list[float]) -> float:
    """softmax(row)[1] of two logits, without overflow."""
    import math

    gap = row[0] - row[1]
    return 1 / (1 + math.exp(gap)) if gap < 0 else math.exp(-gap) / (1 + math.exp(-gap))


def _vote(for_i: float, against_i: float) -> float:
    return 1.0 if for_i > against_i else 0.0 if for_i < against_i else 0.5
