"""OpTune end to end on the tiny model: jobs/train_optune.py samples and judges training problems, trains the
learned optimizer on Ray Train, and jobs/scale.py --strategy optune uses it, alternating base and edited attempts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parent.parent


def test_train_optune_then_scale_with_it(ray_cluster, tiny_model, tmp_path):
    import ray

    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(REPO))
    common = ["--backend", "hf", "--model", tiny_model, "--max_tokens", "16", "generation.num_cpus=0.5",
              "execution.workers_per_actor=1"]
    out = tmp_path / "optune"
    train = subprocess.run([sys.executable, str(REPO / "jobs/train_optune.py"), "--dataset", "humaneval", "--skip",
                            "2", "--limit", "5", "--samples", "2", "--validation_fraction", "0.2",
                            "training.epochs=2", "training.cpus_per_worker=0.5", *common, "--output", str(out)],
                           env=env, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert "8 training and 2 validation failures" in train.stdout  # a random model fails all 5 x 2 samples
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == 2 and metrics["val_reference_nll"] > 0 and metrics["val_reference_nll_base"] > 0
    assert (out / "optune" / "optune.pt").exists() and json.loads((out / "optune" / "optune.json").read_text())

    scale = tmp_path / "scale"
    run = subprocess.run([sys.executable, str(REPO / "jobs/scale.py"), "--dataset", "humaneval", "--limit", "2",
                          "--strategy", "optune", "--optune", str(out / "optune"), "--budget", "3", *common,
                          "--output", str(scale)], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [json.loads(line) for line in (scale / "attempts.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["passed"] is False for r in rows)
    assert all(r["trained"] is True and r["ttt_loss"] > 0 for r in rows if r["attempt"] < 2)
    assert json.loads((scale / "scale_summary.json").read_text())["strategy"] == "optune"


def test_the_optune_strategy_needs_a_trained_optimizer():
    from raylib.config import ConfigError, load_config

    sys.path.insert(0, str(REPO))
    from jobs.scale import ScaleConfig

    with pytest.raises(ConfigError, match="needs --optune"):
        load_config(ScaleConfig, ["--strategy", "optune"])
