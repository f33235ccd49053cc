"""Search spaces over a job's own config keys, as a sweep's YAML writes them:

    search_space:
      train.optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
      train.peft.r: {grid: [4, 8]}
      train.peft.method: {choice: [lora, ia3]}
      train.optim.grad_accum: {randint: [1, 4]}          # low inclusive, high exclusive (Tune's randint)

    from raylib.tune.space import parse_space, trial_overrides, tune_param_space
    dimensions = parse_space(space, SFTConfig, base_args=["--config", "configs/sft.yaml"])   # checked, or ValueError
    tune_param_space(dimensions)            # {"train.optim.lr": tune.loguniform(...), ...} for a Tuner
    trial_overrides({"train.optim.lr": 3e-4})                # ["train.optim.lr=0.0003"]: arguments of the job

Every key must name a field of the job's config and every value the search can take must validate there: a
misspelt key or a value of the wrong type fails here, naming it, before any trial starts. Pure: ray.tune is imported
only by `tune_param_space`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import BaseModel

__all__ = ["SAMPLERS", "Dimension", "parse_space", "trial_overrides", "tune_param_space"]

SAMPLERS = ("grid", "choice", "uniform", "loguniform", "randint")


@dataclasses.dataclass(frozen=True)
class Dimension:
    key: str  # a dotted key of the job's config, e.g. "train.optim.lr"
    sampler: str  # one of SAMPLERS
    values: tuple  # grid/choice: the values; uniform/loguniform/randint: (low, high)


def parse_space(space: dict, config_cls: type[BaseModel], base_args: list[str] | None = None) -> list[Dimension]:
    """The dimensions of a search space, checked against `config_cls`: each key names a field, each form is one of
    SAMPLERS, and the job's config loads (with `base_args` first) at every grid/choice value and at both ends of a
    range. Raises ValueError naming the key (and the value) at fault."""
    from raylib.config import ConfigError, config_field, load_config

    if not isinstance(space, dict) or not space:
        raise ValueError("search_space must map config keys to {sampler: values}, e.g. "
                         "{'train.optim.lr': {'loguniform': [1e-4, 1e-2]}}")
    dimensions = []
    for key, form in space.items():
        try:
            config_field(config_cls, key)
        except ConfigError as err:
            raise ValueError(f"search_space key {key!r}: {err}") from None
        if not isinstance(form, dict) or len(form) != 1 or next(iter(form)) not in SAMPLERS:
            raise ValueError(f"search_space key {key!r}: expected one of {{{', '.join(SAMPLERS)}: ...}}, got {form!r}")
        sampler, values = next(iter(form.items()))
        if not isinstance(values, list) or not values:
            raise ValueError(f"search_space key {key!r}: {sampler} needs a non-empty list, got {values!r}")
        if sampler in ("uniform", "loguniform", "randint"):
            values = [_number(v) for v in values]  # YAML 1.1 reads 1e-4 (no dot) as a string
            if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
                    or not values[0] < values[1] or (sampler == "loguniform" and values[0] <= 0):
                raise ValueError(f"search_space key {key!r}: {sampler} needs [low, high] with low < high"
                                 f"{' and low > 0' if sampler == 'loguniform' else ''}, got {values!r}")
        dimensions.append(Dimension(key, sampler, tuple(values)))
    for dimension in dimensions:  # every value the search may take loads into the job's config
        for value in dimension.values:
            try:
                load_config(config_cls, [*(base_args or []), *trial_overrides({dimension.key: value})])
            except ConfigError as err:
                raise ValueError(f"search_space key {dimension.key!r} = {value!r}: {err}") from None
    return dimensions


def trial_overrides(params: dict[str, Any]) -> list[str]:
    """A trial's sampled values as the job's `key=value` arguments (values as JSON, which YAML reads back)."""
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]


def tune_param_space(dimensions: list[Dimension]) -> dict:
    """The Tune param_space of the dimensions (flat: the dotted keys are the parameter names)."""
    from ray import tune

    make = {"grid": lambda v: tune.grid_search(list(v)), "choice": lambda v: tune.choice(list(v)),
            "uniform": lambda v: tune.uniform(*v), "loguniform": lambda v: tune.loguniform(*v),
            "randint": lambda v: tune.randint(*v)}
    return {d.key: make[d.sampler](d.values) for d in dimensions}


def _number(value):
    """`value`, or the number a string like '1e-4' spells (else the string, for the caller's error)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
