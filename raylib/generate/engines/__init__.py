"""Generation engines behind one small Protocol (`base.GenerationEngine`), one file per backend: vLLM (default),
Hugging Face transformers, OpenAI-compatible HTTP.

    from raylib.generate.engines import make_engine
    from raylib.generate.engines.base import EngineConfig, GenerationRequest, SamplingParams
    engine = make_engine(EngineConfig(backend="vllm", model="/path/to/hf-dir"))

Each backend is imported only inside its own branch of `make_engine`, so importing this package is cheap.
"""

from __future__ import annotations

from raylib.generate.engines.base import EngineConfig, GenerationEngine

__all__ = ["make_engine"]


def make_engine(config: EngineConfig) -> GenerationEngine:
    """Build the configured engine; each backend's heavy imports happen only in its own branch."""
    if config.backend == "vllm":
        from raylib.generate.engines.vllm import VLLMEngine

        return VLLMEngine(config)
    if config.backend == "hf":
        from raylib.generate.engines.hf import HFEngine

        return HFEngine(config)
    if config.backend == "openai":
        from raylib.generate.engines.openai import OpenAIEngine

        return OpenAIEngine(config)
    raise ValueError(f"unknown backend {config.backend!r}")
