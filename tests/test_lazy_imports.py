"""`import raylib` and `import sandbox` stay cheap: no torch, vllm, deepspeed or ray.serve (raylib: not even ray)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("torch", "vllm", "deepspeed", "ray.serve")


def _loaded_after(imports: str, modules: tuple[str, ...]) -> list[str]:
    code = f"import sys; {imports}; print(','.join(m for m in {modules!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [m for m in proc.stdout.strip().split(",") if m]


def test_import_raylib_loads_no_heavy_module_not_even_ray():
    assert _loaded_after("import raylib, raylib.config, raylib.cluster", HEAVY + ("ray",)) == []


def test_import_sandbox_loads_no_heavy_module():
    assert _loaded_after("import raylib, sandbox", HEAVY) == []


def test_evaluation_building_blocks_load_neither_ray_nor_plotting():
    modules = "raylib.data.problems, raylib.data.samples, raylib.evaluate.metrics, raylib.evaluate.requests, raylib.evaluate.stage, raylib.evaluate.report, raylib.train.data.from_results"
    assert _loaded_after(f"import {modules}", HEAVY + ("ray", "matplotlib", "tqdm")) == []


def test_generation_modules_import_no_engine_until_one_is_built():
    modules = ("raylib.generate.engines.base, raylib.generate.prompts, raylib.models, raylib.generate.stage, raylib.generate.engines.vllm, raylib.generate.engines.hf, "
               "raylib.generate.engines.openai, raylib.train.data.reflection, raylib.train.data.sft, raylib.train.data.reward")
    assert _loaded_after(f"import {modules}", HEAVY + ("ray", "transformers", "httpx")) == []


def test_training_modules_import_no_torch_until_a_worker_runs():
    modules = "raylib.train.runner, raylib.train.loop, raylib.train.batching, raylib.train.adapters"
    assert _loaded_after(f"import {modules}", HEAVY + ("ray", "transformers", "peft")) == []
