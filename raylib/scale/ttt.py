"""Test-time training on feedback (FTTT): one small LoRA adapter per problem, an optimizer step per failed attempt.

    from raylib.scale.ttt import TTTSettings, TestTimeTrainer
    trainer = TestTimeTrainer(EngineConfig(backend="hf", model="embedded"), TTTSettings())
    [result] = trainer.generate("HumanEval/0", [request])          # with HumanEval/0's adapter (fresh: the base)
    loss = trainer.step("HumanEval/0", 0, messages, answer, feedback)  # attempt 0 failed: one AdamW step
    trainer.feedback_nll("HumanEval/0", messages, answer, feedback)   # the same loss, no step (tests, reports)

The paper's defaults (LaVi-Lab/FTTT, prelim/fttt.py and its script): LoRA rank 4, alpha 16, dropout 0.05 on the
attention query and value projections, AdamW at a constant 1e-5 without weight decay, one step per failure on the
negative log-likelihood of the feedback turn (the chat template's user turn holding the feedback, as the model
would read it after its answer) given the prompt and the failed answer. FTTT+ first has the base model (adapter
off) reflect on the failure (REFLECTION_INSTRUCTION: summarise the mistakes, no corrected solution); its turn is
then "<feedback> <reflection>" and the loss the feedback tokens' mean NLL plus the reflection tokens' mean NLL.

Every problem starts from a fresh adapter (LoRA's own initialisation: A random, seeded per problem; B zero, so the
model is exactly the base model) and a fresh optimizer; one model copy serves many problems by swapping their
adapter weights and optimizer states in and out. Everything is deterministic on CPU, so a killed run rebuilds a
problem's adapter by replaying its recorded steps (`replay`). torch, transformers and peft are imported inside.
"""

from __future__ import annotations

import math
import threading

from pydantic import BaseModel, ConfigDict, Field

from raylib.generate.engines.base import derive_seed

__all__ = ["REFLECTION_INSTRUCTION", "TTTSettings", "TestTimeTrainer", "feedback_turn_ids"]

# FTTT+'s instruction for the base model's reflection on a failed attempt (prelim/fttt.py, self_reflect_norm)
REFLECTION_INSTRUCTION = ("Your answer is incorrect. Please carefully check the solution and summarize all mistakes in "
                          "short. Do NOT provide the corrected solution. Do NOT say \"my solution\".")


class TTTSettings(BaseModel):
    """FTTT's adapter and optimizer (the paper's defaults)."""

    model_config = ConfigDict(extra="forbid")

    lora_r: int = Field(4, ge=1, description="LoRA rank.")
    lora_alpha: float = Field(16, gt=0, description="LoRA alpha.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout (active during the step only).")
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"],
                                      description="Linear layers the adapter wraps (by name).")
    lr: float = Field(1e-5, gt=0, description="AdamW learning rate (constant).")
    steps_per_failure: int = Field(1, ge=1, le=16, description="Optimizer steps per failed attempt.")
    seed: int = Field(0, description="Base seed of each problem's adapter initialisation.")


def _feedback_turn(tokenizer, messages: list[dict], answer: str, feedback: str) -> tuple[list[int], str]:
    """(ids of the chat up to and including the answer, the text the chat template adds for the feedback turn)."""
    before = messages + [{"role": "assistant", "content": answer}]
    context = tokenizer.apply_chat_template(before, tokenize=False)
    full = tokenizer.apply_chat_template(before + [{"role": "user", "content": feedback}], tokenize=False)
    if not full.startswith(context):
        raise ValueError("the chat template renders the conversation differently once a turn is added; FTTT needs "
                         "the feedback turn to extend the rendered chat")
    return list(tokenizer(context, add_special_tokens=False)["input_ids"]), full[len(context):]


def feedback_turn_ids(tokenizer, messages: list[dict], answer: str, feedback: str) -> tuple[list[int], list[int]]:
    """(context ids, feedback turn ids): the chat up to and including the answer, and the tokens the chat template
    adds for the feedback turn (its markup and text) after it."""
    context_ids, turn = _feedback_turn(tokenizer, messages, answer, feedback)
    turn_ids = list(tokenizer(turn, add_special_tokens=False)["input_ids"])
    if not turn_ids:
        raise ValueError("the feedback turn renders to no tokens")
    return context_ids, turn_ids


class TestTimeTrainer:
    """An HF causal LM with one LoRA adapter whose weights (and AdamW state) are kept per problem."""

    __test__ = False  # not a pytest class

    def __init__(self, engine_config, settings: TTTSettings):
        import peft

        from raylib.generate.engines.hf import HFEngine

        self.settings = settings
        self.engine = HFEngine(engine_config.model_copy(update={"backend": "hf"}))
        config = peft.LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha,
                                 lora_dropout=settings.lora_dropout, target_modules=list(settings.target_modules),
                                 task_type="CAUSAL_LM")
        self.model = peft.get_peft_model(self.engine.model, config)
        self.model.eval()
        self.engine.model = self.model  # the engine samples through the adapter
        self.tokenizer = self.engine.tokenizer
        self.lora = {name: p for name, p in self.model.named_parameters() if "lora_" in name}
        if not self.lora:
            raise ValueError(f"no layer named {settings.target_modules} in the model: set target_modules")
        self.states: dict[str, dict] = {}  # task id -> {"weights": {name: tensor}, "optimizer": state dict}
        self.current: str | None = None
        self.optimizer = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------- adapters

    def _fresh(self, task_id: str) -> dict:
        """LoRA's own initialisation (A: kaiming-uniform with a=sqrt(5), seeded per problem; B: zeros)."""
        import torch

        generator = torch.Generator().manual_seed(derive_seed(self.settings.seed, task_id))
        weights = {}
        for name, p in self.lora.items():
            w = torch.zeros_like(p)
            if "lora_A" in name:
                bound = 1 / math.sqrt(p.shape[1])  # kaiming_uniform_(a=sqrt(5)) on a (out, in) weight
                w.uniform_(-bound, bound, generator=generator)
            weights[name] = w
        return {"weights": weights, "optimizer": None}

    def _activate(self, task_id: str) -> None:
        """Put `task_id`'s adapter and optimizer state in place (a fresh one for a new problem)."""
        import torch

        if self.current == task_id:
            return
        self._store()
        state = self.states.get(task_id) or self._fresh(task_id)
        with torch.no_grad():
            for name, p in self.lora.items():
                p.copy_(state["weights"][name])
        self.optimizer = torch.optim.AdamW(list(self.lora.values()), lr=self.settings.lr, weight_decay=0.0)
        if state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.current = task_id

    def _store(self) -> None:
        if self.current is None:
            return
        self.states[self.current] = {"weights": {n: p.detach().clone() for n, p in self.lora.items()},
                                     "optimizer": self.optimizer.state_dict() if self.optimizer else None}

    def forget(self, task_id: str) -> None:
        """Drop a finished problem's adapter (memory)."""
        with self._lock:
            if self.current == task_id:
                self.current = None
            self.states.pop(task_id, None)

    def adapter_norm(self, task_id: str) -> float:
        """The L2 norm of the problem's LoRA B weights: 0 exactly while the adapter is the base model."""
        with self._lock:
            self._activate(task_id)
            return float(sum(float((p.detach() ** 2).sum()) for n, p in self.lora.items() if "lora_B" in n)) ** 0.5

    # ------------------------------------------------------------------------------------------- work

    def generate(self, task_id: str, requests) -> list:
        with self._lock:
            self._activate(task_id)
            self.model.eval()
            return self.engine.generate(requests)

    def _nll(self, messages: list[dict], answer: str, feedback: str, reflection: str = ""):
        """The feedback turn's mean NLL; with a reflection (FTTT+: the turn is "<feedback> <reflection>"), the mean
        NLL of the tokens up to the feedback's end plus the mean NLL of the reflection's tokens (FTTT's
        self_reflect_norm)."""
        import torch

        if not reflection:
            context, turn = feedback_turn_ids(self.tokenizer, messages, answer, feedback)
        else:  # the turn rendered once: its tokens, and where the reflection's begin
            context, text = _feedback_turn(self.tokenizer, messages, answer, f"{feedback} {reflection}")
            encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            turn = list(encoded["input_ids"])
            split = _tokens_before(encoded["offset_mapping"], text, reflection)
        ids = torch.tensor([context + turn], device=self.engine.device)
        logits = self.model(input_ids=ids).logits[0, len(context) - 1:-1].float()
        losses = torch.nn.functional.cross_entropy(logits, ids[0, len(context):], reduction="none")
        if not reflection:
            return losses.mean()
        return losses[:split].mean() + losses[split:].mean()

    def feedback_nll(self, task_id: str, messages: list[dict], answer: str, feedback: str,
                     reflection: str = "") -> float:
        import torch

        with self._lock:
            self._activate(task_id)
            self.model.eval()
            with torch.no_grad():
                return float(self._nll(messages, answer, feedback, reflection))

    def reflect(self, requests) -> list:
        """FTTT+'s reflection: the base model (every adapter off) answers each request."""
        with self._lock:
            self.model.eval()
            with self.model.disable_adapter():
                return self.engine.generate(requests)

    def step(self, task_id: str, attempt: int, messages: list[dict], answer: str, feedback: str,
             reflection: str = "") -> float:
        """`steps_per_failure` AdamW steps on the feedback turn's mean NLL after failed `attempt`; returns the loss
        before the first. Dropout is seeded per (problem, attempt), so a replay takes exactly the same steps."""
        import torch

        with self._lock:
            self._activate(task_id)
            self.model.train()
            torch.manual_seed(derive_seed(self.settings.seed, f"{task_id}:{attempt}"))
            first = None
            for _ in range(self.settings.steps_per_failure):
                loss = self._nll(messages, answer, feedback, reflection)
                first = float(loss.detach()) if first is None else first
                loss.backward()
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            self.model.eval()
            return first

    def replay(self, task_id: str, steps: list[tuple[int, list[dict], str, str, str]]) -> None:
        """Rebuild a problem's adapter from its recorded steps (attempt, messages, answer, feedback, reflection), from
        a fresh one."""
        with self._lock:
            if self.current == task_id:
                self.current = None
            self.states.pop(task_id, None)
        for attempt, messages, answer, feedback, reflection in steps:
            self.step(task_id, attempt, messages, answer, feedback, reflection)


def _tokens_before(offsets: list[tuple[int, int]], turn: str, reflection: str) -> int:
    """How many of the rendered feedback turn's tokens (their character `offsets` in `turn`) come before the
    reflection starts (template markup and feedback)."""
    start = turn.rindex(reflection)
    split = sum(1 for _, end in offsets if end <= start)  # a token across the start belongs to the reflection
    if not 0 < split < len(offsets):
        raise ValueError("the reflection could not be told apart from the feedback in the rendered turn")
    return split
