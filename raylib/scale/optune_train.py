"""Training OpTune's learned optimizer on Ray Train (jobs/train_optune.py is the entrypoint).

    from raylib.scale.optune_train import OpTuneTraining, failure_examples, train_optune, load_optune
    examples = failure_examples(problems, samples, results, tokenizer, prompt_settings)   # encoded, per failure
    outcome = train_optune(examples, validation, "embedded", OpTuneTraining(), "runs/optune")
    layers, learned = load_optune("runs/optune/optune", model)          # for the scaling loops (--strategy optune)

Data: the base model's samples of the training problems, judged in the sandbox (an evaluation run); each failed
sample is one example: the failure (the problem's chat, the failed answer, FTTT's feedback turn: its NLL's gradient
makes the update) and the reference (the problem's reference solution as the answer: its NLL under the update is
the loss). The base model is frozen; only the learned optimizer trains (Adam). Workers all-reduce its gradients
(gloo or NCCL) and each takes a disjoint share of the examples; rank 0 saves a checkpoint (optune.pt: the network's
state; optune.json: its settings, the model and the edited layers) every epoch and reports the validation NLL with
and without the update. Re-running after a kill resumes from the latest checkpoint. torch and ray are imported
inside.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from raylib.scale.optune import OpTuneSettings

__all__ = ["OpTuneTraining", "failure_examples", "load_optune", "train_optune", "train_optune_func"]

CHECKPOINT_FILES = ("optune.pt", "optune.json")


class OpTuneTraining(BaseModel):
    """The learned optimizer and how it is trained."""

    model_config = ConfigDict(extra="forbid")

    optune: OpTuneSettings = Field(default_factory=OpTuneSettings, description="Edited layers and network shape.")
    epochs: int = Field(2, ge=1, description="Passes over the failures.")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate of the learned optimizer.")
    workers: int = Field(1, ge=1, description="Ray Train workers (one model copy each).")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each worker reserves.")
    use_gpu: bool = Field(False, description="One GPU per worker.")
    max_length: int = Field(2048, ge=16, description="Longest failure or reference, tokens (longer ones are left out).")
    seed: int = Field(0, description="Seed of the network's initialisation and the example order.")


def failure_examples(tasks, samples: dict[tuple[str, int], dict], results: list[dict], tokenizer,
                     feedback: str, max_length: int) -> list[dict]:
    """One encoded example per failed sample (see the module docstring): {"task_id", "failure": [ids, labels],
    "reference": [ids, labels]}; problems without a reference solution, and examples over `max_length`, are left
    out."""
    from raylib.scale.optune import encode_failure, encode_reference

    out = []
    for row in results:
        if row.get("passed") or row["task_id"] not in tasks.problems:
            continue
        sample = samples.get((row["task_id"], row["sample_id"]))
        problem = tasks.problems[row["task_id"]]
        if not sample or not sample.get("raw_output") or not problem.reference_solution:
            continue
        messages = list(tasks.first_turn(row["task_id"]).messages)
        reference = f"```{problem.language}\n{problem.reference_solution.strip()}\n```"
        failure = encode_failure(tokenizer, messages, sample["raw_output"], feedback)
        target = encode_reference(tokenizer, messages, reference)
        if max(len(failure[0]), len(target[0])) > max_length:
            continue
        out.append({"task_id": row["task_id"], "failure": list(failure), "reference": list(target)})
    return out


def _mean_losses(model, layers, learned, rows: list[dict]) -> tuple[float, float]:
    """(reference NLL under the update, without it) averaged over `rows`."""
    import torch

    from raylib.scale.optune import reference_loss

    if not rows:
        return float("nan"), float("nan")
    learned.eval()
    edited = base = 0.0
    for row in rows:
        edited += float(reference_loss(model, layers, learned, row["failure"], row["reference"]).detach())
        with torch.no_grad():
            ids = torch.tensor([row["reference"][0]])
            base += float(model(input_ids=ids, labels=torch.tensor([row["reference"][1]])).loss)
    return edited / len(rows), base / len(rows)


def train_optune_func(config: dict) -> None:
    """The Ray Train worker: frozen model, learned optimizer, Adam; gradients all-reduced; a checkpoint per epoch."""
    import random
    import tempfile

    import ray
    import ray.train
    import torch
    import torch.distributed as dist
    from transformers import AutoModelForCausalLM

    from raylib.scale.optune import LearnedOptimizer, reference_loss, target_layers

    settings = OpTuneTraining.model_validate(config["settings"])
    rank, world = ray.train.get_context().get_world_rank(), ray.train.get_context().get_world_size()
    device = ray.train.torch.get_device() if settings.use_gpu else torch.device("cpu")
    torch.manual_seed(settings.seed)
    model = AutoModelForCausalLM.from_pretrained(config["model"], dtype=torch.float32).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    layers = target_layers(model, settings.optune)
    learned = LearnedOptimizer(layers, settings.optune).to(device)
    adam = torch.optim.Adam(learned.parameters(), lr=settings.lr)
    start_epoch = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / "optune.pt", map_location=device)
            learned.load_state_dict(state["learned"])
            adam.load_state_dict(state["adam"])
            start_epoch = state["epoch"] + 1
    train = ray.get(config["data"]["train"])
    validation = ray.get(config["data"]["validation"]) if config["data"]["validation"] is not None else []
    for epoch in range(start_epoch, settings.epochs):
        order = list(range(len(train)))
        random.Random(settings.seed + epoch).shuffle(order)
        mine = order[rank::world][:len(order) // world] or order[:1]  # equal shares: every rank steps as often
        learned.train()
        total = 0.0
        for index in mine:
            loss = reference_loss(model, layers, learned, train[index]["failure"], train[index]["reference"])
            loss.backward()
            if world > 1:
                for p in learned.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= world
            adam.step()
            adam.zero_grad()
            total += float(loss.detach())
        edited, base = _mean_losses(model, layers, learned, validation)
        metrics = {"epoch": epoch + 1, "train_reference_nll": total / max(1, len(mine)),
                   "val_reference_nll": edited, "val_reference_nll_base": base}
        with tempfile.TemporaryDirectory() as folder:
            if rank == 0:
                torch.save({"learned": learned.state_dict(), "adam": adam.state_dict(), "epoch": epoch},
                           Path(folder) / "optune.pt")
                (Path(folder) / "optune.json").write_text(json.dumps({
                    "model": config["model"], "settings": settings.optune.model_dump(mode="json"),
                    "layers": list(layers)}, indent=1))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
            else:
                ray.train.report(metrics)


def train_optune(train: list[dict], validation: list[dict], model: str, settings: OpTuneTraining,
                 output: str | Path) -> dict:
    """Fit the learned optimizer on Ray Train (resuming OUTPUT/ray's latest checkpoint); copies the final one to
    OUTPUT/optune/ and returns its metrics (also in OUTPUT/metrics.json). Needs init_cluster() first."""
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from raylib.files import write_json
    from raylib.train.runner import replace_dir

    output = Path(output).resolve()
    data = {"train": ray.put(train), "validation": ray.put(validation) if validation else None}
    trainer = TorchTrainer(
        train_optune_func,
        train_loop_config={"settings": settings.model_dump(mode="json"), "model": model, "data": data},
        torch_config=TorchConfig(backend="nccl" if settings.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=settings.workers, use_gpu=settings.use_gpu,
                                               resources_per_worker={"CPU": settings.cpus_per_worker}),
        run_config=ray.train.RunConfig(name="optune", storage_path=str(output / "ray"),
                                       checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2)))
    result = trainer.fit()
    if result.error is not None or result.checkpoint is None:
        raise RuntimeError(f"OpTune training failed: {result.error}")
    replace_dir(Path(result.checkpoint.path), output / "optune")
    metrics = dict(result.metrics or {})
    write_json(output / "metrics.json", metrics)
    return metrics


def load_optune(folder: str | Path, model):
    """(layers, learned optimizer in eval mode) saved in `folder` (optune.pt + optune.json) for `model`."""
    import torch

    from raylib.scale.optune import LearnedOptimizer, OpTuneSettings, target_layers

    folder = Path(folder)
    meta = json.loads((folder / "optune.json").read_text())
    settings = OpTuneSettings.model_validate(meta["settings"])
    layers = target_layers(model, settings)
    if list(layers) != meta["layers"]:
        raise ValueError(f"{folder} edits layers {meta['layers'][:2]}..., which this model does not have in that "
                         "order: train OpTune for this model")
    learned = LearnedOptimizer(layers, settings)
    learned.load_state_dict(torch.load(folder / "optune.pt", map_location="cpu")["learned"])
    return layers, learned.eval()
