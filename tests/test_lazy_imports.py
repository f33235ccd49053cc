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
    modules = "raylib.problems, raylib.samples, raylib.metrics, raylib.evaluation, raylib.execution, raylib.report, raylib.datasets"
    assert _loaded_after(f"import {modules}", HEAVY + ("ray", "matplotlib", "tqdm")) == []


def test_generation_modules_import_no_engine_until_one_is_built():
    modules = ("raylib.engines, raylib.prompts, raylib.models, raylib.generation, raylib.engine_vllm, raylib.engine_hf, "
               "raylib.engine_openai, raylib.reflection, raylib.sft_data, raylib.reward")
    assert _loaded_after(f"import {modules}", HEAVY + ("ray", "transformers", "httpx")) == []


def test_training_modules_import_no_torch_until_a_worker_runs():
    modules = "raylib.training, raylib.train_loop, raylib.batches, raylib.adapters"
    assert _loaded_after(f"import {modules}", HEAVY + ("ray", "transformers", "peft")) == []
