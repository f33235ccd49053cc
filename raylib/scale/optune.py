"""OpTune: a small learned network that turns the gradient of one failure into a weight update (FTTT's second method,
after MEND). torch is imported inside; works on any Hugging Face decoder with the named projections, through hooks
(no copy of the model's code or files).

    from raylib.scale.optune import LearnedOptimizer, OpTuneSettings, failure_update, target_layers, with_update
    layers = target_layers(model, OpTuneSettings())                   # {"model.layers.30.self_attn.q_proj": Linear}
    optimizer = LearnedOptimizer(layers, OpTuneSettings())
    update, nll = failure_update(model, layers, optimizer, ids, labels)   # {name: dW} (differentiable), the NLL
    with with_update(layers, update):                                 # W + dW while generating the next attempt
        model.generate(...)

How an update is made: hooks capture, for each chosen linear layer, each token's input activation x_t and the
gradient d_t of the failure's NLL with respect to the layer's output (the two factors of the weight gradient
sum_t d_t x_t^T). One network per weight shape, shared by the layers of that shape, maps them: each factor is
normalised by running statistics (Welford's, updated while training), then x by a residual low-rank MLP (rank 16,
output layer at zero: the identity at first) and d by a low-rank MLP whose output layer starts at zero; the update
is dW = eta * sum_t d^_t x^_t^T with a learnable step eta per layer (starting at 1e-4). So the first update is
exactly zero (generation equals the base model's) and training grows it. Training (raylib.scale.optune_train)
minimises the reference solution's NLL under the update, gradients into this network only.
"""

from __future__ import annotations

import contextlib
import re
import sys

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LearnedOptimizer", "OpTuneSettings", "encode_failure", "encode_reference", "failure_update",
           "reference_loss", "target_layers", "with_update"]


class OpTuneSettings(BaseModel):
    """Which layers OpTune edits and the shape of its network."""

    model_config = ConfigDict(extra="forbid")

    projections: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"],
                                   description="Names of the linear layers edited (the attention query and value "
                                   "projections).")
    last_layers: int = Field(2, ge=1, description="Edit those projections in the model's last N decoder layers.")
    rank: int = Field(16, ge=1, description="Rank of the network's low-rank MLPs.")
    step_size: float = Field(1e-4, gt=0, description="Initial learnable step size per edited matrix.")


def target_layers(model, settings: OpTuneSettings) -> dict:
    """{module name: torch.nn.Linear} of the chosen projections in the last `last_layers` decoder layers, in model
    order; ValueError when the model has none."""
    import torch

    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in settings.projections]
    indexed = [(int(m.group(1)), name, module) for name, module in found
               if (m := re.search(r"\.(\d+)\.", name))]
    if not indexed:
        raise ValueError(f"the model has no linear layers named {settings.projections} inside numbered decoder "
                         "layers; set projections")
    last = sorted({i for i, _, _ in indexed})[-settings.last_layers:]
    return {name: module for i, name, module in indexed if i in last}


def _shape_key(layer) -> str:
    return f"{layer.in_features}x{layer.out_features}"


def _modules():
    import torch
    from torch import nn

    class RunningNorm(nn.Module):
        """Per-feature running mean and standard deviation (Welford), updated only while training."""

        def __init__(self, dim: int):
            super().__init__()
            self.register_buffer("count", torch.zeros(()))
            self.register_buffer("mean", torch.zeros(dim))
            self.register_buffer("m2", torch.zeros(dim))

        def forward(self, x):
            if self.training:  # Chan et al.'s merge of the batch's statistics into the running ones
                with torch.no_grad():
                    rows = x.detach().float()
                    n, total = rows.shape[0], self.count + rows.shape[0]
                    batch_mean = rows.mean(0)
                    delta = batch_mean - self.mean
                    self.m2 += ((rows - batch_mean) ** 2).sum(0) + delta ** 2 * self.count * n / total
                    self.mean += delta * n / total
                    self.count += n
            if self.count < 2:
                return x
            std = (self.m2 / (self.count - 1)).sqrt()
            return (x - self.mean) / (std + 1e-7)

    class LowRank(nn.Module):
        """down -> ReLU -> up, `up` at zero; `residual`: x + that (the identity at first), else just that (zero)."""

        def __init__(self, dim: int, rank: int, residual: bool):
            super().__init__()
            self.down, self.up, self.residual = nn.Linear(dim, rank), nn.Linear(rank, dim), residual
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

        def forward(self, x):
            out = self.up(torch.relu(self.down(x)))
            return x + out if self.residual else out

    class ShapeNet(nn.Module):
        def __init__(self, in_dim: int, out_dim: int, rank: int):
            super().__init__()
            self.norm_x, self.norm_d = RunningNorm(in_dim), RunningNorm(out_dim)
            self.net_x, self.net_d = LowRank(in_dim, rank, residual=True), LowRank(out_dim, rank, residual=False)

        def forward(self, x, d):
            return self.net_x(self.norm_x(x)), self.net_d(self.norm_d(d))

    return ShapeNet


def LearnedOptimizer(layers: dict, settings: OpTuneSettings):  # noqa: N802 - a class built on first use (lazy torch)
    """The learned optimizer for `layers` (see the module docstring): a torch.nn.Module with `nets` (one per weight
    shape) and `step_sizes` (one per layer, in `layers` order); `update(captures)` -> {name: dW}."""
    import torch
    from torch import nn

    ShapeNet = _modules()

    class _LearnedOptimizer(nn.Module):
        def __init__(self):
            super().__init__()
            self.names = list(layers)
            self.shapes = {name: _shape_key(layer) for name, layer in layers.items()}
            self.nets = nn.ModuleDict({key: ShapeNet(int(key.split("x")[0]), int(key.split("x")[1]), settings.rank)
                                       for key in dict.fromkeys(self.shapes.values())})
            self.step_sizes = nn.Parameter(torch.full((len(self.names),), settings.step_size))

        def update(self, captures: dict) -> dict:
            """{name: (x [T, in], d [T, out])} -> {name: dW [out, in]}."""
            out = {}
            for i, name in enumerate(self.names):
                x, d = captures[name]
                x_hat, d_hat = self.nets[self.shapes[name]](x.float(), d.float())
                out[name] = self.step_sizes[i] * d_hat.transpose(0, 1) @ x_hat
            return out

    return _LearnedOptimizer()


@contextlib.contextmanager
def _captured(layers: dict):
    """Hooks that record each layer's input activations and output gradients: yields {name: [x, d]}."""
    seen: dict = {name: [None, None] for name in layers}
    handles = []
    for name, layer in layers.items():
        def forward(module, inputs, output, name=name):
            seen[name][0] = inputs[0].detach()
            if output.requires_grad:  # the gradient reaching this layer's output, when the backward pass gets here
                output.register_hook(lambda grad, name=name: seen[name].__setitem__(1, grad.detach()))

        handles.append(layer.register_forward_hook(forward))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def failure_update(model, layers: dict, optimizer, input_ids, labels) -> tuple[dict, float]:
    """The update for one failure, and the failure's NLL: the NLL of `labels` (-100: not scored) given `input_ids`
    ([1, T]), its per-token factors captured at `layers`, mapped by `optimizer`. The model's weights get no gradient
    (only the edited layers' activations need one, for the hooks); the update is differentiable in `optimizer`'s
    parameters."""
    flags = {name: layer.weight.requires_grad for name, layer in layers.items()}
    for layer in layers.values():
        layer.weight.requires_grad_(True)  # so the backward pass reaches these layers
    import torch

    try:
        with _captured(layers) as seen:
            loss = model(input_ids=input_ids, labels=labels).loss
            params = [layer.weight for layer in layers.values()]
            torch.autograd.grad(loss, params)  # fires the output hooks; the weights' own gradients are dropped
    finally:
        for name, layer in layers.items():
            layer.weight.requires_grad_(flags[name])
    captures = {name: (x.reshape(-1, x.shape[-1]), d.reshape(-1, d.shape[-1])) for name, (x, d) in seen.items()}
    return optimizer.update(captures), float(loss.detach())


@contextlib.contextmanager
def with_update(layers: dict, update: dict | None):
    """Each layer computes with W + dW inside the block (a forward hook adds x dW^T to its output)."""
    import torch

    handles = []
    for name, layer in layers.items():
        if update is None or name not in update:
            continue

        def forward(module, inputs, output, delta=update[name]):
            return output + torch.nn.functional.linear(inputs[0], delta.to(output.dtype))

        handles.append(layer.register_forward_hook(forward))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def encode_failure(tokenizer, messages: list[dict], answer: str, feedback: str) -> tuple[list[int], list[int]]:
    """(ids, labels) of a failure: the chat, the failed answer, then the feedback turn, which alone is scored."""
    from raylib.scale.ttt import feedback_turn_ids
    from raylib.train.data import IGNORE

    context, turn = feedback_turn_ids(tokenizer, messages, answer, feedback)
    return context + turn, [IGNORE] * len(context) + turn


def encode_reference(tokenizer, messages: list[dict], solution: str) -> tuple[list[int], list[int]]:
    """(ids, labels) of the reference answer after the chat's prompt; only the answer is scored (the SFT job's
    chat encoding: raylib.train.data.sft.encode_chat)."""
    from raylib.train.data.sft import encode_chat

    encoded = encode_chat(tokenizer, messages + [{"role": "assistant", "content": solution}], sys.maxsize)
    return encoded["input_ids"], encoded["labels"]


def reference_loss(model, layers: dict, optimizer, failure: tuple[list[int], list[int]],
                   reference: tuple[list[int], list[int]]):
    """OpTune's objective for one example: the reference's NLL under the update made from the failure; its gradient
    reaches only `optimizer`'s parameters."""
    import torch

    device = next(model.parameters()).device

    def tensors(pair):
        return torch.tensor([pair[0]], device=device), torch.tensor([pair[1]], device=device)

    update, _ = failure_update(model, layers, optimizer, *tensors(failure))
    ids, labels = tensors(reference)
    with with_update(layers, update):
        return model(input_ids=ids, labels=labels).loss
