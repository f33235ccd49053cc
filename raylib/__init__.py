"""codeloop's library: building blocks for sampling, executing, scoring, training and serving code LLMs.

Pure logic lives in plain modules; Ray plumbing lives in thin shells around it, and one module owns the cluster:

    from raylib.config import JobConfig, load_config, log_config   # one pydantic config per job
    from raylib.cluster import init_cluster, shutdown_cluster      # the only place that calls ray.init

Importing this package is cheap: it must not import torch, vllm, deepspeed or ray.serve (nor ray itself);
heavy backends are imported inside the functions that need them (tests/test_lazy_imports.py enforces it).
"""

__version__ = "0.1.0"
