"""The Hugging Face transformers engine: the fallback where vLLM is not installed or does not support a model.

    from raylib.generate.engines import make_engine
    from raylib.generate.engines.base import EngineConfig
    engine = make_engine(EngineConfig(backend="hf", model="embedded"))

Each sample is one `generate` call seeded with its own seed (greedy: one call for all n; unseeded: one call with
`num_return_sequences=n`), so answers do not depend on what else is in the batch or on where a resumed run starts. Stop
sequences end generation once the answer's text holds one and are cut from the text, as vLLM does. Slower than vLLM;
meant for small runs, checks and models vLLM lacks. A PEFT adapter directory (what jobs/sft.py writes with
train.peft.method) loads on its base model, whatever the adapter kind.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from raylib.generate.engines.base import (
    EngineConfig,
    GenerationOutput,
    GenerationRequest,
    GenerationResult,
    check_prompt_length,
    failed_result,
    render_prompt,
    truncate_at_stop,
)

__all__ = ["HFEngine"]


class _StopOnText:
    """Stop each row once its decoded answer contains a stop string (vLLM's rule; transformers' own `stop_strings`
    matches token pieces, which can stop before the text holds the string)."""

    def __init__(self, tokenizer, stops, prompt_len: int):
        self.tokenizer, self.stops, self.prompt_len = tokenizer, list(stops), prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)


class HFEngine:
    can_prefill = True  # the answer can start with response_prefix

    def __init__(self, config: EngineConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from raylib.models import resolve_model

        self.config = config
        path = resolve_model(config.model)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if config.cpu_threads and self.device == "cpu":
            torch.set_num_threads(config.cpu_threads)
        dtype = {"auto": torch.float32 if self.device == "cpu" else "auto", "float32": torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.dtype, config.dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if (Path(path) / "adapter_config.json").exists():  # a PEFT adapter a training job wrote (any kind, prefix too)
            from raylib.train.adapters import load_trained

            model = load_trained(path, "causal_lm", dtype=dtype, **config.engine_kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **config.engine_kwargs)
        self.model = model.to(self.device).eval()
        self.max_model_len = config.max_model_len or getattr(self.model.config, "max_position_embeddings", None)
        self.eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        self._lock = threading.Lock()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        with self._lock:  # one generate() at a time: concurrent calls would fight over the same threads and seed
            return [self._run_alone(r) for r in requests]

    def _run_alone(self, request: GenerationRequest) -> GenerationResult:
        try:
            return self._run(request)
        except Exception as exc:  # noqa: BLE001 - a malformed or oversized request fails alone
            return failed_result(exc)

    def _run(self, request: GenerationRequest) -> GenerationResult:
        ids, prefilled = render_prompt(self.tokenizer, request)
        check_prompt_length(len(ids), self.max_model_len)
        p = request.params
        if p.temperature == 0:  # every greedy answer is the same: computed once
            outputs = self._sample(ids, p, None, 1) * p.n
        elif request.seed is None:
            outputs = self._sample(ids, p, None, p.n)
        else:  # sample i seeded with seed + i, as vLLM does: a resumed run redraws exactly the missing samples
            outputs = [self._sample(ids, p, request.seed + i, 1)[0] for i in range(p.n)]
        return GenerationResult(outputs=outputs, prompt_tokens=len(ids), prefilled=prefilled)

    def _sample(self, ids: list[int], p, seed: int | None, count: int) -> list[GenerationOutput]:
        import torch

        if seed is not None:
            torch.manual_seed(seed)
        max_new = p.max_tokens if self.max_model_len is None else min(p.max_tokens, self.max_model_len - len(ids))
        sampling = (dict(do_sample=False) if p.temperature == 0
                    else dict(do_sample=True, temperature=p.temperature, top_p=p.top_p))
        with torch.inference_mode():
            out = self.model.generate(
                torch.tensor([ids], device=self.device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=self.device),
                max_new_tokens=max_new, num_return_sequences=count,
                stopping_criteria=[_StopOnText(self.tokenizer, p.stop, len(ids))] if p.stop else None,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id, **sampling)
        eos = set(self.eos if isinstance(self.eos, list) else [self.eos])
        outputs = []
        for row in out[:, len(ids):].tolist():
            ended = next((j for j, t in enumerate(row) if t in eos), None)
            tokens = row[:ended] if ended is not None else row
            text, stopped = truncate_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), p.stop)
            outputs.append(GenerationOutput(text, len(tokens) + (ended is not None),
                                            "stop" if ended is not None or stopped else "length"))
        return outputs

    def beam_search(self, requests: Sequence[GenerationRequest], width: int) -> list[GenerationResult]:
        """Beam search of `width` per request (raylib.generate.engines.beam, the same rule as the vLLM engine's)."""
        from raylib.generate.engines.beam import beam_search, beam_text_result, stop_check

        results = []
        with self._lock:
            for request in requests:
                try:
                    ids, prefilled = render_prompt(self.tokenizer, request)
                    check_prompt_length(len(ids), self.max_model_len)
                    p = request.params
                    room = p.max_tokens if self.max_model_len is None else \
                        min(p.max_tokens, self.max_model_len - len(ids))
                    eos = set(self.eos if isinstance(self.eos, list) else [self.eos])
                    beams = beam_search(self._top_tokens, ids, width, room, eos, stop_check(self.tokenizer, p.stop))
                    results.append(beam_text_result(self.tokenizer, beams, p.stop, len(ids), prefilled))
                except Exception as exc:  # noqa: BLE001 - a malformed or oversized request fails alone
                    results.append(failed_result(exc))
        return results

    def _top_tokens(self, sequences: list[list[int]], k: int) -> list[list[tuple[int, float]]]:
        """Each sequence's k likeliest next tokens: one forward pass over the left-padded batch."""
        import torch

        longest = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.tensor([[pad] * (longest - len(s)) + s for s in sequences], device=self.device)
        mask = torch.tensor([[0] * (longest - len(s)) + [1] * len(s) for s in sequences], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1, :]
            top = torch.log_softmax(logits.float(), dim=-1).topk(k, dim=-1)
        return [list(zip(t.tolist(), v.tolist())) for t, v in zip(top.indices, top.values)]

    def close(self) -> None:
        self.model = None
