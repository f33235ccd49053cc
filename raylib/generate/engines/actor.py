"""The Ray actor that holds one engine, for jobs that call an engine directly (the scaling loops, the executor
jobs) rather than through a Ray Data stage.

    import ray
    from raylib.generate.engines.actor import EngineActor
    engine = ray.remote(EngineActor).options(num_cpus=1, max_concurrency=4).remote(EngineConfig().model_dump())
    results = ray.get(engine.generate.remote([GenerationRequest(prompt="def f():")]))
"""

from __future__ import annotations

import os

__all__ = ["EngineActor"]


class EngineActor:
    """A threaded Ray actor holding one engine: concurrent calls share its batches (`ray.remote(EngineActor)`)."""

    def __init__(self, config: dict):
        from raylib.generate.engines import make_engine
        from raylib.generate.engines.base import EngineConfig

        self.engine = make_engine(EngineConfig.model_validate(config))

    def can_prefill(self) -> bool:
        return bool(getattr(self.engine, "can_prefill", True))

    def generate(self, requests):
        return self._call(self.engine.generate, requests)

    def beam_search(self, requests, width: int):
        search = getattr(self.engine, "beam_search", None)
        if search is None:
            from raylib.generate.engines.base import GenerationResult

            return [GenerationResult(error=f"the {type(self.engine).__name__} has no beam search: use backend vllm "
                                           "or hf") for _ in requests]
        return self._call(search, requests, width)

    def _call(self, method, *args):
        from raylib.generate.engines.base import EngineBroken

        try:
            return method(*args)
        except EngineBroken as exc:  # the engine is gone: end the actor; Ray restarts it and retries the call
            print(f"codeloop: {exc}; exiting so that Ray restarts this actor", flush=True)
            os._exit(1)
