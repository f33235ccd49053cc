"""The Docker backend, for real: a Docker engine and the image from sandbox/docker/build_image.sh.

CI starts the engine and builds the image (.ci/run) and sets CODELOOP_REQUIRE_DOCKER=1, so these tests fail there
instead of skipping when Docker is missing.
"""

from __future__ import annotations

import os
import time

import pytest

from sandbox import ExecRequest, FunctionTests, Sandbox, SandboxConfig, StdioCase, StdioTests
from tests.test_sandbox_attacks import FAST

pytestmark = pytest.mark.docker

UID = 63000


@pytest.fixture(scope="module")
def dbox():
    from sandbox.isolation import detect_isolation

    report = detect_isolation("docker")
    if report.level == "none":
        if os.environ.get("CODELOOP_REQUIRE_DOCKER") == "1":
            pytest.fail("docker backend required but unavailable: " + "; ".join(report.notes))
        pytest.skip("docker backend unavailable: " + "; ".join(report.notes))
    with Sandbox(SandboxConfig(backend="docker", workers=1, uid_base=UID)) as sandbox:
        yield sandbox


def _live_uid_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = open(f"/proc/{entry}/status").read()
            except OSError:
                continue
            if int(status.split("\nUid:")[1].split()[0]) == UID and status.split("State:")[1].split()[0] != "Z":
                found.append(int(entry))
    return found


def _assert_clean(box):
    assert _live_uid_processes() == []
    assert box.run(ExecRequest(language="python", code="print(2 + 2)")).stdout == "4\n"


def test_docker_backend_reports_its_isolation(dbox):
    assert dbox.report.backend == "docker" and dbox.report.level == "full"
    result = dbox.run(ExecRequest(language="python", code="import os\nprint(os.getuid())"))
    assert result.stdout == f"{UID}\n" and result.isolation.startswith("docker")


def test_docker_function_tests_pass_and_fail(dbox):
    test = FunctionTests(test_code="def check(c):\n    assert c(2) == 4\n", entry_point="sq")
    good = dbox.run(ExecRequest(language="python", code="def sq(x):\n    return x * x\n", tests=test))
    bad = dbox.run(ExecRequest(language="python", code="def sq(x):\n    return x + 1\n", tests=test))
    forged = dbox.run(ExecRequest(language="python", code="import os\nos._exit(0)\n", tests=test))
    assert (good.status, bad.status) == ("passed", "failed")
    assert not forged.passed


def test_docker_python_tests_with_a_reference_are_judged_by_replay(dbox):
    test = FunctionTests(test_code="def check(c):\n    assert c(2) == 4\n", entry_point="sq",
                         reference_solution="def sq(x):\n    return x * x\n")
    good = dbox.run(ExecRequest(language="python", code="def sq(x):\n    return x ** 2\n", tests=test))
    bad = dbox.run(ExecRequest(language="python", code="def sq(x):\n    return x + 1\n", tests=test))
    assert (good.status, good.judged_by, bad.status, bad.judged_by) == ("passed", "replay", "failed", "replay")
    _assert_clean(dbox)


def test_docker_cpp_and_javascript(dbox):
    cpp = dbox.run(ExecRequest(language="cpp", code="#include <cstdio>\n"
                                                    "int main(){int a;scanf(\"%d\",&a);printf(\"%d\\n\",a*3);}",
                               tests=StdioTests(cases=[StdioCase(input="7", output="21")])))
    js = dbox.run(ExecRequest(language="javascript",
                              code="console.log(require('fs').readFileSync(0,'utf8').trim().length)",
                              tests=StdioTests(cases=[StdioCase(input="abcd", output="4")])))
    assert cpp.status == "passed", cpp
    assert js.status == "passed", js


def test_docker_fork_bomb_is_contained(dbox):
    start = time.monotonic()
    result = dbox.run(ExecRequest(language="python", limits=FAST,
                                  code="import os\nwhile True:\n    try:\n        os.fork()\n"
                                       "    except OSError:\n        pass\n"))
    assert result.status in ("timeout", "runtime-error") and time.monotonic() - start < 10
    _assert_clean(dbox)


def test_docker_setsid_children_that_linger_are_killed(dbox):
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1000)\nprint('bye')\n"
    assert dbox.run(ExecRequest(language="python", code=code, limits=FAST)).status == "passed"
    _assert_clean(dbox)


def test_docker_memory_bomb_is_contained(dbox):
    result = dbox.run(ExecRequest(language="python", code="x = bytearray(3 * 1024**3)\n", limits=FAST))
    assert result.status == "memory"
    _assert_clean(dbox)


def test_docker_has_no_network_and_no_host_files(dbox):
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import os, socket\n"
        "print(sorted(n for _, n in socket.if_nameindex()))\n"
        f"print(os.path.exists({project!r}), os.path.exists('/root/.pyenv'), sorted(os.environ))\n"
    )
    out = dbox.run(ExecRequest(language="python", code=code)).stdout.splitlines()
    assert out[0] == "['lo']"
    assert out[1].startswith("False False")


def test_docker_runs_leave_nothing_for_the_next_program(dbox):
    leave = (
        "import ctypes, os\n"
        "for d in ('/dev/shm', '/tmp', '/var/tmp', '/run', '/ipc'):\n"
        "    try:\n"
        "        open(os.path.join(d, 'left'), 'w').write('x')\n"
        "        print('wrote', d)\n"
        "    except OSError:\n"
        "        pass\n"
        "libc = ctypes.CDLL(None)\n"
        "print('shm', libc.shmget(0x4321, 4096, 0o1666) >= 0)\n"
    )
    find = (
        "import ctypes, os\n"
        "print([d for d in ('/dev/shm', '/tmp', '/var/tmp', '/run', '/ipc') "
        "if os.path.exists(os.path.join(d, 'left'))])\n"
        "print(ctypes.CDLL(None).shmget(0x4321, 4096, 0o666))\n"
    )
    first = dbox.run(ExecRequest(language="python", code=leave))
    second = dbox.run(ExecRequest(language="python", code=find))
    assert "wrote" not in first.stdout, first.stdout
    assert second.stdout.split("\n")[:2] == ["[]", "-1"], second.stdout
