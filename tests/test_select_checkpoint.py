"""Checkpoint selection (jobs/select_checkpoint.py, raylib.tune) on tiny models with real training and a real
metric: a checkpoint trained on the reference solutions against a deliberately damaged copy of it, as Tune trials
on the shared Ray cluster."""

from __future__ import annotations

import json
import shutil

import pytest

from jobs import select_checkpoint as job
from raylib.data.problems import load_problems
from raylib.tune.metrics import metric_mode, reference_nll

pytestmark = pytest.mark.slow
TASKS = 6


@pytest.fixture(scope="module")
def trained_and_damaged(tiny_model, tmp_path_factory):
    """The tiny Llama after 30 steps on the first TASKS reference solutions, and a copy with its weights scrambled."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tmp_path_factory.mktemp("ckpts")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    problems = list(load_problems("humaneval").values())[:TASKS]
    texts = [tokenizer(p.reference_solution, return_tensors="pt")["input_ids"][:, :256] for p in problems]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for step in range(30):
        ids = texts[step % len(texts)]
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained = base / "trained"
    model.save_pretrained(trained, safe_serialization=True)
    tokenizer.save_pretrained(trained)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter[torch.randperm(parameter.shape[0])] if parameter.dim() > 1 else parameter)
    damaged = base / "damaged"
    model.save_pretrained(damaged, safe_serialization=True)
    tokenizer.save_pretrained(damaged)
    return str(trained), str(damaged)


def test_metric_modes():
    assert metric_mode("pass@1") == metric_mode("pass@10") == "max"
    assert metric_mode("reference_nll") == "min"
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        metric_mode("accuracy")


def test_reference_nll_is_lower_for_the_model_trained_on_the_references(trained_and_damaged, tiny_model):
    problems = dict(list(load_problems("humaneval").items())[:TASKS])
    trained, damaged = (reference_nll(path, problems) for path in trained_and_damaged)
    untrained = reference_nll(tiny_model, problems)
    assert trained < untrained < damaged or trained < damaged < untrained
    assert trained < damaged


def test_selection_picks_the_intact_checkpoint_and_a_rerun_resumes(ray_cluster, trained_and_damaged, tmp_path,
                                                                  capsys):
    trained, damaged = (str(shutil.copytree(path, tmp_path / name))
                        for path, name in zip(trained_and_damaged, ("trained", "damaged")))
    output = tmp_path / "select"
    args = ["--checkpoints", damaged, trained, "--dataset", "humaneval", "--limit", str(TASKS), "--metric",
            "reference_nll", "--output", str(output), "--trial_cpus", "0.5"]
    assert job.main(args) == 0
    selection = json.loads((output / "selection.json").read_text())
    assert selection["metric"] == "reference_nll" and selection["mode"] == "min"
    assert selection["best"] == trained
    assert set(selection["scores"]) == {trained, damaged}
    assert selection["scores"][trained] < selection["scores"][damaged]
    assert selection["best"] == min(selection["scores"], key=selection["scores"].get)
    assert "| **" + trained in (output / "report.md").read_text()
    assert (output / "selection.png").stat().st_size > 0
    # a re-run restores the experiment: nothing is scored again (the weights are gone), the selection is the same
    for checkpoint in (trained, damaged):
        (tmp_path / checkpoint / "model.safetensors").unlink()
    assert job.main(args) == 0
    assert json.loads((output / "selection.json").read_text()) == selection
    # another set of checkpoints in the same output is refused, not silently restored as the old one
    other = args[:]
    other[other.index(damaged)] = trained
    other[other.index(trained) + 1:other.index(trained) + 2] = []
    capsys.readouterr()
    assert job.main(other) == 2 and "changed: checkpoints" in capsys.readouterr().err


def test_pass_at_k_runs_generation_and_the_sandbox_per_checkpoint(ray_cluster, tiny_model, tmp_path):
    output = tmp_path / "pass"
    rc = job.main(["--checkpoints", tiny_model, "--dataset", "humaneval", "--limit", "2", "--metric", "pass@1",
                   "--output", str(output), "generation.engine.backend=hf", "generation.sampling.max_tokens=16",
                   "--trial_cpus", "0.25"])
    assert rc == 0
    selection = json.loads((output / "selection.json").read_text())
    assert selection["best"] and 0.0 <= selection["scores"][selection["best"]] <= 1.0
    trial = next((output / "trials").iterdir())
    assert len((trial / "results.jsonl").read_text().splitlines()) == 2  # generated and run in the sandbox


def test_bad_checkpoints_and_metrics_are_refused_before_any_trial(tmp_path, tiny_model):
    from raylib.config import ConfigError

    with pytest.raises(ConfigError, match="not a Hugging Face model or adapter directory"):
        job.main(["--checkpoints", str(tmp_path), "--output", str(tmp_path / "o")])
    with pytest.raises(ConfigError, match="pass@5 needs n >= 5"):
        job.main(["--checkpoints", tiny_model, "--metric", "pass@5", "--output", str(tmp_path / "o")])


def test_a_killed_selection_resumes_without_scoring_finished_trials_again(ray_cluster, trained_and_damaged, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import ray

    repo = Path(__file__).resolve().parent.parent
    checkpoints = [str(shutil.copytree(trained_and_damaged[i % 2], tmp_path / f"ckpt{i}")) for i in range(3)]
    output = tmp_path / "select"
    args = ["--checkpoints", *checkpoints, "--dataset", "humaneval", "--limit", str(TASKS), "--metric",
            "reference_nll", "--max_concurrent_trials", "1", "--trial_cpus", "0.5", "--output", str(output)]
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, PYTHONPATH=str(repo))
    driver = subprocess.Popen([sys.executable, str(repo / "jobs/select_checkpoint.py"), *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finished() -> list[str]:
        done = []
        for result in (output / "tune").glob("select/*/result.json"):
            lines = result.read_text().splitlines()
            if lines:
                done.append(json.loads(lines[-1])["config"]["checkpoint"])
        return done

    try:
        deadline = time.monotonic() + 180
        while not finished() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    done = finished()
    assert 1 <= len(done) < 3, f"the driver must die between trials, finished: {done}"
    for checkpoint in done:  # scoring these again would fail now
        (Path(checkpoint) / "model.safetensors").unlink()
    assert job.main(args) == 0
    selection = json.loads((output / "selection.json").read_text())
    assert set(selection["scores"]) == set(checkpoints) and not selection["errors"]
    assert selection["scores"][checkpoints[0]] == pytest.approx(selection["scores"][checkpoints[2]])  # same model
