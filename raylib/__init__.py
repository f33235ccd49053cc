"""codeloop's library: building blocks for sampling, executing, scoring, training and serving code LLMs.

Grouped by capability (README.md, "Architecture"): `data/` (problems, samples), `generate/` (engines, prompts, the
generation stage and loop), `evaluate/` (limits, the execution stage, the pipeline as one call, metrics, report),
`train/` (runner, loop, objectives, data). Pure logic lives in plain modules; Ray plumbing lives in thin shells
around it, and one module owns the cluster:

    from raylib.config import JobConfig, load_config, log_config   # one pydantic config per job
    from raylib.cluster import init_cluster, shutdown_cluster      # the only place that calls ray.init
    from raylib.evaluate.pipeline import evaluate                  # generate -> execute -> pass@k, as a call

Importing this package is cheap: it must not import torch, vllm, deepspeed or ray.serve (nor ray itself);
heavy backends are imported inside the functions that need them (tests/test_lazy_imports.py enforces it).
"""

__version__ = "0.1.0"
