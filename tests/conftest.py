"""Shared test setup: one Ray cluster per session, the repo root on sys.path, and `gpu` / `docker` marker skips.

    def test_x(ray_cluster):            # ray_cluster: the shared local cluster's total resources (dict)
        ...
    def test_y(tiny_model):             # tiny_model: path of a tiny random Llama HF directory (built once)
        ...

    @pytest.mark.gpu                    # skipped unless torch sees a CUDA GPU
    @pytest.mark.docker                 # skipped unless `docker info` works; with CODELOOP_REQUIRE_DOCKER=1 it fails
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # so tests can import the `jobs/` scripts

# Logical CPUs of the shared test cluster: more than the 2 cores so fractional actors and Tune trials fit.
TEST_CLUSTER_CPUS = 4


@pytest.fixture(scope="session")
def ray_cluster():
    """Start ONE local Ray cluster for the whole session (ray.init costs 6-8 s here) and stop it at the end."""
    from raylib.cluster import init_cluster, shutdown_cluster

    resources = init_cluster(address="local", num_cpus=TEST_CLUSTER_CPUS, include_dashboard=False)
    yield resources
    shutdown_cluster()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny random Llama + BPE tokenizer with a chat template, built once per session (tests/tiny_model.py)."""
    from tests.tiny_model import build_tiny_llama

    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))


def _serve(handler):
    """Serve `handler` (an http.server request handler class) on 127.0.0.1; yields its /v1 URL."""
    import threading
    from http.server import ThreadingHTTPServer

    handler.biased, handler.down, handler.asked = False, False, []
    handler.status = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def judge_url():
    """A real OpenAI-compatible chat endpoint on 127.0.0.1 that judges programs by rule (tests/judge_server.py);
    yields its /v1 URL."""
    from tests.judge_server import JudgeServer

    yield from _serve(JudgeServer)


@pytest.fixture
def synth_url():
    """A real OpenAI-compatible chat endpoint on 127.0.0.1 that answers Commit-Instruct, Critic-Evol and CodeFavor
    judge prompts by rule (tests/synth_server.py); yields its /v1 URL."""
    from tests.synth_server import SynthServer

    yield from _serve(SynthServer)


@functools.cache
def _gpu_missing_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "needs torch with CUDA (torch is not installed)"
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (torch.cuda.is_available() is False)"
    return None


@functools.cache
def _docker_missing_reason() -> str | None:
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "needs a Docker engine (no `docker` command)"
    except subprocess.TimeoutExpired:
        return "needs a Docker engine (`docker info` timed out)"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return f"needs a Docker engine (`docker info` failed: {detail[-1] if detail else proc.returncode})"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None:
        reason = _gpu_missing_reason()
        if reason:
            pytest.skip(reason)
    if item.get_closest_marker("docker") is not None:
        reason = _docker_missing_reason()
        if reason:
            if os.environ.get("CODELOOP_REQUIRE_DOCKER") == "1":
                pytest.fail(f"CODELOOP_REQUIRE_DOCKER=1 but this test {reason}", pytrace=False)
            pytest.skip(reason + "; set CODELOOP_REQUIRE_DOCKER=1 to make this a failure")
