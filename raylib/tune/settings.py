"""What the Tune jobs share in their configs: the code metric, the problems it is measured on, how a checkpoint
generates and runs, and how trials are scheduled (jobs/select_checkpoint.py and jobs/sweep.py subclass it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from raylib.config import ConsoleJobConfig
from raylib.data.problems import DATASETS, check_dataset
from raylib.evaluate.stage import ExecutionPool
from raylib.generate.settings import GenerationSettings
from raylib.tune.metrics import PAIRS_METRICS, metric_mode

__all__ = ["CodeMetricJobConfig"]


class CodeMetricJobConfig(ConsoleJobConfig):
    dataset: str = Field("humaneval", description=f"Problem set the metric is measured on, one of {DATASETS}.")
    dataset_path: str | None = Field(None, description="Problem file; None: the shipped one.")
    skip: int = Field(0, ge=0, description="Leave out the dataset's first N problems (e.g. those a sweep trains on: "
                      "jobs/build_datasets.py --limit N), then take --limit of the rest.")
    limit: int | None = Field(None, ge=1, description="The first N problems only (after skip).")
    metric: str = Field("pass@1", description="pass@K (generate + sandbox; K <= n), reference_nll, or on a pairs "
                        "file pairs_accuracy, pairs_auc (reward models), preference_accuracy (preference classifiers).")
    pairs: str | None = Field(None, description="Pairs file ({prompt, chosen, rejected} per line, e.g. "
                              "jobs/build_datasets.py's pairs.jsonl) for the pairs metrics.")
    n: int | None = Field(None, ge=1, description="Shortcut for generation.sampling.n.")
    temperature: float | None = Field(None, ge=0, description="Shortcut for generation.sampling.temperature.")
    generation: GenerationSettings = Field(default_factory=GenerationSettings, description="How each checkpoint "
                                           "generates (its engine's model is the checkpoint).")
    execution: ExecutionPool = Field(default_factory=ExecutionPool, description="Execution actor pool and sandbox.")
    max_concurrent_trials: int | None = Field(None, ge=1, description="Trials at once; None: as many as the "
                                              "cluster's resources allow.")
    retries: int = Field(1, ge=0, description="Times an errored trial is run again.")
    ray_address: str | None = Field(None, description="Ray cluster to join; None: RAY_ADDRESS or a local one.")

    @model_validator(mode="after")
    def _check_metric(self):
        check_dataset(self.dataset, self.dataset_path)
        metric_mode(self.metric)
        if self.metric in PAIRS_METRICS and not (self.pairs and Path(self.pairs).is_file()):
            raise ValueError(f"metric {self.metric} needs pairs: a pairs file (got {self.pairs!r})")
        if self.n is not None:
            self.generation.sampling.n = self.n
        if self.temperature is not None:
            self.generation.sampling.temperature = self.temperature
        if self.metric.startswith("pass@") and int(self.metric[5:]) > self.generation.sampling.n:
            raise ValueError(f"{self.metric} needs n >= {self.metric[5:]} samples per problem (--n)")
        return self

    def problems_spec(self) -> dict:
        """What each trial measures on: {"dataset", "dataset_path", "skip", "limit", "pairs"}."""
        return {"dataset": self.dataset, "dataset_path": self.dataset_path, "skip": self.skip, "limit": self.limit,
                "pairs": str(Path(self.pairs).resolve()) if self.pairs else None}
