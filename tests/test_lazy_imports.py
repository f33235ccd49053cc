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


def test_every_library_module_imports_no_engine_ray_or_plotting_until_used():
    """Each module of raylib/ (found by walking the package, so new ones are covered): backends, Ray, plotting and
    progress bars are imported inside the functions that use them."""
    code = ("import importlib, pkgutil, raylib\n"
            "for m in pkgutil.walk_packages(raylib.__path__, 'raylib.'): importlib.import_module(m.name)")
    loaded = _loaded_after(code, HEAVY + ("ray", "transformers", "peft", "httpx", "matplotlib", "tqdm"))
    assert loaded == []


def test_the_walk_sees_every_capability():
    code = ("import pkgutil, raylib\n"
            "print(' '.join(m.name for m in pkgutil.walk_packages(raylib.__path__, 'raylib.')))\n"
            "import sys; sys.exit(0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    names = set(proc.stdout.split())
    assert {"raylib.evaluate.pipeline", "raylib.generate.engines.vllm", "raylib.train.loop", "raylib.console"} <= names
