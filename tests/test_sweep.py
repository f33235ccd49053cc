"""Sweeps (raylib.tune.sweep) on the tiny model with real training (Ray Train + DeepSpeed, gloo) inside Tune trials
and a real code metric at every checkpoint."""

from __future__ import annotations

import json

import pytest

from tests.train_data import write_sft

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_a_sweep_of_three_trials_picks_the_argmax_of_every_reported_checkpoint(ray_cluster, tiny_model, tmp_path):
    from raylib.tune.sweep import sweep

    data = write_sft(tmp_path / "sft.jsonl", n=32)
    job_args = ["--model", tiny_model, "--data.train", str(data), "train.scaling.workers=1",
                "train.scaling.cpus_per_worker=1", "train.optim.max_steps=4", "train.checkpoint.every_steps=2",
                "train.optim.micro_batch_size=4", "train.deepspeed.zero_stage=2"]
    output = tmp_path / "sweep"
    summary = sweep("sft", job_args, {"train.optim.lr": {"grid": [1e-5, 3e-3, 3e-2]}}, "reference_nll",
                    {"dataset": "humaneval", "limit": 3}, output)
    assert len(summary["trials"]) == 3 and all(t["status"] == "done" for t in summary["trials"])
    reports = [(t["trial"], r) for t in summary["trials"] for r in t["results"]]
    assert sorted(r["step"] for _, r in reports) == [2, 2, 2, 4, 4, 4]  # every checkpoint of every trial scored
    trial, report = min(reports, key=lambda tr: tr[1]["reference_nll"])  # NLL: lower is better
    assert summary["best"]["trial"] == trial and summary["best"]["value"] == report["reference_nll"]
    assert summary["best"]["checkpoint"] == report["checkpoint"]
    assert (output / "best" / "config.json").exists() and json.loads((output / "sweep_summary.json").read_text())
    assert json.loads((output / "best" / "sweep_best.json").read_text())["value"] == report["reference_nll"]
    assert (output / "report.md").exists() and (output / "sweep.png").exists()
    assert any((output / "trials").glob("*/tensorboard"))


def test_a_search_space_naming_a_key_the_job_lacks_fails_before_any_trial(tmp_path):
    from raylib.tune.sweep import sweep

    with pytest.raises(ValueError, match="train.optim.learning_rate"):
        sweep("sft", ["--data.train", str(write_sft(tmp_path / "sft.jsonl"))],
              {"train.optim.learning_rate": {"grid": [1e-3]}}, "reference_nll", {"dataset": "humaneval"},
              tmp_path / "out")
    assert not (tmp_path / "out" / "tune").exists()


def test_a_killed_sweep_resumes_without_running_finished_trials_again(ray_cluster, tiny_model, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import ray
    import yaml

    repo = Path(__file__).resolve().parent.parent
    data = write_sft(tmp_path / "sft.jsonl", n=32)
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "job": "sft", "metric": "reference_nll", "dataset": "humaneval", "limit": 2, "max_concurrent_trials": 1,
        "job_args": ["--model", tiny_model, "--data.train", str(data), "train.scaling.workers=1",
                     "train.scaling.cpus_per_worker=1", "train.optim.max_steps=2", "train.optim.micro_batch_size=4"],
        "search_space": {"train.optim.lr": {"grid": [1e-4, 1e-3]}}}))
    output = tmp_path / "out"
    args = [sys.executable, str(repo / "jobs/sweep.py"), "--config", str(config), "--output", str(output)]
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(repo))
    with open(tmp_path / "first.log", "w") as log:
        driver = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not list((output / "trials").glob("*/metrics.json")) and time.monotonic() < deadline:
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(3)  # Tune saves the experiment's state when a trial ends
        assert driver.poll() is None, "the sweep ended before it could be killed"
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    [finished] = list((output / "trials").glob("*/metrics.json"))
    checkpoints = sorted(finished.parent.glob("ray/train/checkpoint_*"))
    assert not (output / "sweep_summary.json").exists()

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    summary = json.loads((output / "sweep_summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["done", "done"]
    assert sorted(finished.parent.glob("ray/train/checkpoint_*")) == checkpoints  # it did not train again
    assert len(list((output / "trials").glob("*/metrics.json"))) == 2
    assert "best: " in second.stdout
