"""PEFT adapters for every training job: LoRA, IA3, LN-tuning, prefix tuning; saving and merging.

    from raylib.train.adapters import apply_peft, load_trained, merge_adapter
    model = apply_peft(model, settings.peft, task="causal_lm")        # unchanged when method is "none"
    model = load_trained("runs/sft/model", task="causal_lm")          # a full model or base + adapter, ready to use
    merge_adapter("runs/sft/model", "runs/sft/merged", "causal_lm")   # the adapter folded into the base weights

An adapter directory is what `PeftModel.save_pretrained` writes (adapter_config.json names the base model's path).
`peft` and transformers are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NUM_LABELS", "apply_peft", "auto_model_class", "check_peft", "load_base", "load_trained", "merge_adapter",
           "peft_config"]

TASK_TYPES = {"causal_lm": "CAUSAL_LM", "reward": "SEQ_CLS", "preference": "SEQ_CLS"}
NUM_LABELS = {"reward": 1, "preference": 2}  # a reward model's one logit is its score; preference: A or B


def auto_model_class(task: str):
    """The transformers Auto class of a task: a causal LM, or a sequence classifier (a reward model has one
    output, a preference model two)."""
    import transformers

    return transformers.AutoModelForCausalLM if task == "causal_lm" else transformers.AutoModelForSequenceClassification


def norm_module_names(model) -> list[str]:
    """The distinct last names of the model's normalization layers (LayerNorm, RMSNorm, ...): LN-tuning's targets
    for model types peft has no default for (e.g. BERT)."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if name and "norm" in type(module).__name__.lower()})


def peft_config(settings, task: str, model=None):
    """The `peft` config for `settings` (a `raylib.train.settings.PeftSettings`) and a task; None for method "none".
    With `model`, LN-tuning without target_modules targets its normalization layers."""
    import peft

    task_type = TASK_TYPES[task]
    if settings.method == "lora":
        return peft.LoraConfig(task_type=task_type, r=settings.r, lora_alpha=settings.alpha,
                               lora_dropout=settings.dropout, target_modules=settings.target_modules)
    if settings.method == "ia3":
        return peft.IA3Config(task_type=task_type, target_modules=settings.target_modules,
                              feedforward_modules=settings.feedforward_modules)
    if settings.method == "ln_tuning":
        targets = settings.target_modules
        known = peft.utils.constants.TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING
        if targets is None and model is not None and model.config.model_type not in known:
            targets = norm_module_names(model)
        return peft.LNTuningConfig(task_type=task_type, target_modules=targets)
    if settings.method == "prefix":
        return peft.PrefixTuningConfig(task_type=task_type, num_virtual_tokens=settings.num_virtual_tokens)
    return None


def apply_peft(model, settings, task: str):
    """Wrap `model` in the configured adapter (only the adapter, and a classifier's head, stay trainable)."""
    config = peft_config(settings, task, model)
    if config is None:
        return model
    import peft

    return peft.get_peft_model(model, config)


def check_peft(model: str | Path, task: str, settings) -> None:
    """Apply the configured adapter to the model's skeleton (meta device, no weights read) so that a bad PEFT
    setting (a target module the model lacks, a method its architecture does not support) is a ValueError here,
    before any worker starts."""
    if settings.method == "none":
        return
    import accelerate
    import transformers

    config = transformers.AutoConfig.from_pretrained(model)
    if task in NUM_LABELS:
        config.num_labels = NUM_LABELS[task]
    with accelerate.init_empty_weights():
        skeleton = auto_model_class(task).from_config(config)
    try:
        apply_peft(skeleton, settings, task)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"train.peft.method={settings.method} cannot wrap {config.model_type} model {model}: "
                         f"{err}") from None


def load_base(model: str | Path, task: str, **kwargs):
    """A task's model from a Hugging Face directory: a classifier gets the task's number of outputs."""
    if task in NUM_LABELS:
        kwargs.setdefault("num_labels", NUM_LABELS[task])
    return auto_model_class(task).from_pretrained(model, **kwargs)


def load_trained(path: str | Path, task: str, **kwargs):
    """Load what a training job wrote: a full Hugging Face model, or a PEFT adapter on its base model (the base's
    embeddings grown to the saved tokenizer when training added tokens)."""
    path = Path(path)
    if not (path / "adapter_config.json").exists():
        return load_base(path, task, **kwargs)
    import json

    import peft
    import transformers

    base = load_base(json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"], task, **kwargs)
    vocab = len(transformers.AutoTokenizer.from_pretrained(path))
    if vocab > base.get_input_embeddings().weight.shape[0]:
        base.resize_token_embeddings(vocab)
    return peft.PeftModel.from_pretrained(base, path)


def merge_adapter(adapter_dir: str | Path, output: str | Path, task: str) -> Path:
    """Fold the adapter at `adapter_dir` into its base model and save the result (with the tokenizer) at `output`."""
    import transformers

    output = Path(output)
    model = load_trained(adapter_dir, task).merge_and_unload()
    model.save_pretrained(output, safe_serialization=True)
    transformers.AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(output)
    return output
