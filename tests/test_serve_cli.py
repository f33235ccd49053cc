"""The README's command: `serve run configs/serve.yaml` serves the three apps on 127.0.0.1:8000 (its own local Ray,
the embedded model on CPU vLLM), driven over real HTTP, then stopped with Ctrl-C as a user would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent
URL = "http://127.0.0.1:8000"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait_ready(proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve run exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            ready = [httpx.get(URL + path, timeout=5).status_code for path in ("/v1/models", "/openapi.json")]
            if ready == [200, 200] and httpx.post(URL + "/verify/score", json={}, timeout=5).status_code == 422:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    pytest.fail(f"serve run was not ready in {timeout_s} s:\n{log.read_text()[-4000:]}")


def test_serve_run_of_the_config_file_serves_generator_verifier_and_rerank(tmp_path):
    if not _port_free(8000):
        pytest.fail("port 8000 is taken: configs/serve.yaml serves there; stop what holds it")
    log = tmp_path / "serve.log"
    env = {**os.environ, "RAY_ADDRESS": "local"}  # its own cluster, not the test session's
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "serve"), "run", "configs/serve.yaml"], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(proc, log, timeout_s=420)
        completion = httpx.post(URL + "/v1/completions", timeout=120, json={
            "model": "embedded", "prompt": "def add(a, b):", "max_tokens": 16, "temperature": 0})
        assert completion.status_code == 200 and completion.json()["choices"][0]["text"]
        add = {"dataset": "humaneval", "task_id": "HumanEval/53"}
        scores = httpx.post(URL + "/verify/score", timeout=120, json={
            "problem": add, "candidates": ["    return x + y\n", "    return x * y\n"]}).json()
        assert [s["value"] for s in scores["scores"]["public-tests"]] == [1.0, 0.0]
        sampled = httpx.post(URL + "/rerank", timeout=300, json={"problem": add, "n": 2, "max_tokens": 96}).json()
        assert sampled["generated"] + len(sampled["generation_errors"]) == 2
        assert sampled["best"]["index"] == sampled["ranked"][0]["index"] and "generate" in sampled["timings_ms"]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: serve run shuts Serve down, and its local Ray with it
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of its Ray is left
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while not _port_free(8000) and time.monotonic() < deadline:
        time.sleep(1)
    assert _port_free(8000), "port 8000 still served after Ctrl-C"
