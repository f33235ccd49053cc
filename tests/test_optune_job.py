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


def test_a_peft_baseline_is_trained_by_the_sft_job_evaluated_with_the_budget_and_compared(ray_cluster, tiny_model,
                                                                                         tmp_path):
    import ray

    from tests.train_data import write_sft

    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(REPO))
    data = write_sft(tmp_path / "sft.jsonl", n=16, style="chat")
    sft = subprocess.run([sys.executable, str(REPO / "jobs/sft.py"), "--model", tiny_model, "--data.train", str(data),
                          "train.peft.method=ia3", "train.optim.max_steps=2", "train.optim.micro_batch_size=4",
                          "train.scaling.workers=1", "train.scaling.cpus_per_worker=1",
                          "--output", str(tmp_path / "peft-ia3")], env=env, capture_output=True, text=True,
                         timeout=900)
    assert sft.returncode == 0, sft.stdout[-3000:] + sft.stderr[-3000:]
    common = ["--dataset", "humaneval", "--skip", "3", "--limit", "2", "--backend", "hf", "--max_tokens", "12",
              "--budget", "2", "generation.num_cpus=0.5", "execution.workers_per_actor=1"]
    for name, extra in (("peft-ia3", ["--model", str(tmp_path / "peft-ia3" / "model"), "--strategy", "best-of-n",
                                      "--samples_per_call", "1"]),
                        ("fttt", ["--model", tiny_model, "--strategy", "fttt"])):
        run = subprocess.run([sys.executable, str(REPO / "jobs/scale.py"), *common, *extra, "--output",
                              str(tmp_path / "compare" / name)], env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = subprocess.run([sys.executable, str(REPO / "jobs/compare_scaling.py"), "--root", str(tmp_path / "compare")],
                           env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr[-2000:]
    rows = json.loads((tmp_path / "compare" / "comparison.json").read_text())["humaneval"]
    assert sorted(r["run"] for r in rows) == ["fttt", "peft-ia3"] and all(r["problems"] == 2 for r in rows)
    assert "| peft-ia3 |" in table.stdout and (tmp_path / "compare" / "scaling.png").exists()
