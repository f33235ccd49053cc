"""The sandbox HTTP service, driven over real HTTP on 127.0.0.1 (`python -m sandbox.server`)."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--max-queue", "0", "--max-body-mb", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail("server exited: " + proc.stdout.read())
    else:
        proc.kill()
        pytest.fail("server did not become healthy")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_health_reports_isolation(server):
    body = httpx.get(server + "/health").json()
    assert body["status"] == "ok" and body["isolation"].startswith("bwrap") and body["workers"] == 1


def test_run_over_http(server):
    request = {"language": "python", "code": "def add(a, b):\n    return a + b\n",
               "tests": {"kind": "function", "test_code": "def check(c):\n    assert c(2, 2) == 4\n",
                         "entry_point": "add"}}
    response = httpx.post(server + "/run", json=request, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "passed" and body["tests"][0]["passed"] is True


def test_batch_over_http(server):
    requests = [{"language": "python", "code": f"print({i} * 2)", "request_id": f"r{i}"} for i in range(5)]
    response = httpx.post(server + "/run_batch", json={"requests": requests}, timeout=30)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["stdout"] for r in results] == [f"{i * 2}\n" for i in range(5)]
    assert [r["request_id"] for r in results] == [f"r{i}" for i in range(5)]


def test_bad_input_gets_422_naming_the_field(server):
    response = httpx.post(server + "/run", json={"language": "cobol", "code": "x"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"][-1] == "language" and "unknown language" in detail[0]["msg"]
    assert httpx.post(server + "/run", json={"language": "python", "code": ""}).status_code == 422
    assert httpx.post(server + "/run", content=b"{not json",
                      headers={"content-type": "application/json"}).status_code == 422


def test_oversized_request_gets_413(server):
    response = httpx.post(server + "/run", json={"language": "python", "code": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413 and "exceeds" in response.json()["detail"]


def test_full_sandbox_answers_429(server):
    slow = {"language": "python", "code": "import time\ntime.sleep(2)\nprint('done')"}

    def post(_):
        return httpx.post(server + "/run", json=slow, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(post, range(3)))
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 200 and 429 in codes, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["retry-after"] == "1" and "full" in refused.json()["detail"]
    # once the slow program finished, the service admits again
    assert httpx.post(server + "/run", json={"language": "python", "code": "print(1)"}, timeout=30).status_code == 200
