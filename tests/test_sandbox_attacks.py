"""Attacks on the sandbox, one property per test.

Each test runs a hostile program on a one-worker sandbox, checks the verdict and the time it took, then checks
that the host is unharmed: no process of the worker's uid is left, and the very next run on the same worker is
correct (`_assert_clean`).
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from sandbox import ExecRequest, FunctionTests, Limits, Sandbox, SandboxConfig

FAST = Limits(wall_time_s=3, cpu_time_s=2, memory_mb=256, max_processes=32)


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=1, uid_base=61000)) as sandbox:
        if sandbox.report.level != "full":
            pytest.fail(f"attack tests need full isolation here: {sandbox.report.describe()}")
        yield sandbox


def _host_pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    status = f.read()
            except OSError:
                continue
            real_uid = int(status.split("\nUid:")[1].split()[0])
            state = status.split("State:")[1].split()[0]
            if real_uid == uid and state != "Z":
                pids.append(int(entry))
    return pids


def _assert_clean(box: Sandbox) -> None:
    assert _host_pids_of_uid(61000) == [], "a process of the sandbox uid survived the run"
    result = box.run(ExecRequest(language="python", code="print(sum(range(10)))"))
    assert result.status == "passed" and result.stdout == "45\n", result


def _run(box: Sandbox, code: str, limits: Limits = FAST, **kwargs):
    start = time.monotonic()
    result = box.run(ExecRequest(language="python", code=code, limits=limits, **kwargs))
    return result, time.monotonic() - start


def test_infinite_loop_is_stopped_by_the_cpu_limit(box):
    result, elapsed = _run(box, "while True:\n    pass\n")
    assert result.status == "timeout"
    assert elapsed < 6
    _assert_clean(box)


def test_sleep_forever_is_stopped_by_the_wall_clock_limit(box):
    result, elapsed = _run(box, "import time\ntime.sleep(10**6)\n")
    assert result.status == "timeout"
    assert 2.5 < elapsed < 6
    _assert_clean(box)


def test_reading_stdin_forever_ends_in_a_timeout(box):
    result, elapsed = _run(box, "import sys\nwhile True:\n    sys.stdin.read()\n")
    assert result.status == "timeout"
    assert elapsed < 6
    _assert_clean(box)


def test_fork_bomb_is_contained(box):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result, elapsed = _run(box, code)
    assert result.status in ("timeout", "runtime-error")
    assert elapsed < 8
    _assert_clean(box)


def test_setsid_children_that_linger_are_killed(box):
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1000)\n"
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    result, _ = _run(box, code)
    assert result.status == "passed" and "parent done" in result.stdout
    _assert_clean(box)


def test_memory_bomb_in_one_process_is_contained(box):
    result, elapsed = _run(box, "x = bytearray(2 * 1024**3)\nprint('allocated')\n")
    assert result.status == "memory", result
    assert "allocated" not in result.stdout
    _assert_clean(box)


def test_memory_bomb_across_many_processes_is_contained(box):
    # Each process stays under RLIMIT_AS (200 MiB of 256); together they exceed the run's memory cgroup.
    code = (
        "import os, time\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        blob = bytearray(150 * 1024**2)\n"
        "        for i in range(0, len(blob), 4096):\n"
        "            blob[i] = 1\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "time.sleep(30)\n"
    )
    result, elapsed = _run(box, code)
    assert result.status in ("memory", "timeout"), result
    assert elapsed < 8
    _assert_clean(box)


def test_disk_fill_is_bounded(box):
    code = (
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        with open(f'f{n}', 'wb') as f:\n"
        "            f.write(b'x' * 8 * 1024**2)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print('stopped', n, e.errno)\n"
    )
    free_before = os.statvfs("/").f_bavail
    result, elapsed = _run(box, code, limits=FAST.model_copy(update={"memory_mb": 1024, "wall_time_s": 10}))
    assert result.status in ("passed", "memory", "runtime-error"), result
    assert abs(os.statvfs("/").f_bavail - free_before) * os.statvfs("/").f_frsize < 256 * 1024**2
    _assert_clean(box)


def test_a_single_huge_file_hits_the_file_size_limit(box):
    code = "with open('big', 'wb') as f:\n    f.write(b'x' * 64 * 1024**2)\n"
    result, _ = _run(box, code, limits=FAST.model_copy(update={"file_size_mb": 4}))
    assert result.status == "runtime-error" and "file size" in result.error
    _assert_clean(box)


def test_writes_outside_the_working_directory_fail(box, tmp_path):
    target = tmp_path / "escaped"
    code = (
        "import os\n"
        "paths = ['/tmp/escaped', '/usr/escaped', '/dev/shm/escaped', '/opt/codeloop/sandbox/harness.py', "
        f"{str(target)!r}, '/escaped']\n"
        "ok = []\n"
        "for p in paths:\n"
        "    try:\n"
        "        with open(p, 'w') as f:\n"
        "            f.write('x')\n"
        "        ok.append(p)\n"
        "    except OSError:\n"
        "        pass\n"
        "with open('inside', 'w') as f:\n"
        "    f.write('fine')\n"
        "print('written:', ok)\n"
    )
    result, _ = _run(box, code)
    assert result.status == "passed" and "written: []" in result.stdout, result.stdout
    assert not target.exists()
    _assert_clean(box)


def test_files_do_not_leak_between_runs(box):
    first, _ = _run(box, "open('note', 'w').write('secret')\nimport os\nprint(os.getcwd())\n")
    second, _ = _run(box, "import os\nprint(sorted(os.listdir('.')), os.path.exists('note'))\n")
    assert first.status == "passed" and second.status == "passed"
    assert second.stdout.strip() == "[] False"


def test_host_environment_variables_are_not_visible(box, monkeypatch):
    # The worker was started before this variable existed, and workers get a scrubbed environment anyway.
    os.environ["CODELOOP_TEST_SECRET"] = "hunter2"
    try:
        result, _ = _run(box, "import os\nprint(sorted(os.environ))\nprint(open('/proc/1/environ','rb').read() "
                              "if os.path.exists('/proc/1/environ') else '')\n")
    finally:
        del os.environ["CODELOOP_TEST_SECRET"]
    assert "hunter2" not in result.stdout and "CODELOOP_TEST_SECRET" not in result.stdout
    names = eval(result.stdout.splitlines()[0])
    assert set(names) <= {"PATH", "LANG", "LC_ALL", "PYTHONHASHSEED", "HOME", "TMPDIR"}


def test_project_files_and_root_home_are_not_readable(box):
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import os\n"
        f"paths = [{os.path.join(project, 'pyproject.toml')!r}, {os.path.join(project, 'sandbox', 'pool.py')!r},"
        " '/root/.bashrc', '/root/.ssh', '/etc/shadow', '/etc/passwd', '/home', '/work']\n"
        "print([p for p in paths if os.path.exists(p)])\n"
        "print(sorted(os.listdir('/root')) if os.path.exists('/root') else [])\n"
    )
    result, _ = _run(box, code)
    lines = result.stdout.splitlines()
    assert lines[0] == "[]", lines
    assert lines[1] in ("[]", "['.pyenv']"), lines  # only the interpreter's directory is mounted


def test_network_to_host_loopback_is_unreachable(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "    print('connected')\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)\n"
    )
    result, _ = _run(box, code)
    thread.join()
    server.close()
    assert "refused" in result.stdout and not accepted
    _assert_clean(box)


def test_there_is_no_route_anywhere(box):
    # Proven structurally (no packet is sent anywhere): only a loopback interface and an empty routing table.
    code = (
        "import socket\n"
        "print(sorted(name for _, name in socket.if_nameindex()))\n"
        "print(len(open('/proc/net/route').read().splitlines()) - 1)\n"
    )
    result, _ = _run(box, code)
    assert result.stdout.splitlines() == ["['lo']", "0"], result.stdout


def test_killing_its_parent_fails_and_harms_nothing(box):
    code = (
        "import os, signal\n"
        "for target in (os.getppid(), 1, -1):\n"
        "    try:\n"
        "        os.kill(target, signal.SIGKILL)\n"
        "    except OSError as e:\n"
        "        print('denied', target, e.errno)\n"
    )
    result, _ = _run(box, code)
    assert result.stdout.count("denied") >= 2, result
    _assert_clean(box)


def test_output_flood_is_truncated_and_stopped(box):
    result, elapsed = _run(box, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n")
    assert result.status in ("timeout", "runtime-error")
    assert result.truncated and len(result.stdout) <= 65536
    assert elapsed < 6
    _assert_clean(box)


def test_stopped_processes_are_killed(box):
    code = "import os, signal\nif os.fork() == 0:\n    os.kill(os.getpid(), signal.SIGSTOP)\nprint('ok')\n"
    result, _ = _run(box, code)
    assert result.status == "passed"
    _assert_clean(box)


def test_the_program_runs_as_an_unprivileged_uid(box):
    result, _ = _run(box, "import os\nprint(os.getuid(), os.geteuid(), os.getgroups())\n")
    assert result.stdout.split()[:2] == ["61000", "61000"]


def test_tests_cannot_be_skipped_by_a_crashing_worker_channel(box):
    # Writing junk to every descriptor must not confuse the worker or the host.
    code = (
        "import os\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, b'\\x00\\x00\\x00\\x10junkjunkjunkjunk')\n"
        "    except OSError:\n"
        "        pass\n"
        "def f():\n"
        "    return 1\n"
    )
    result = box.run(ExecRequest(language="python", code=code,
                                 tests=FunctionTests(test_code="def check(c):\n    assert c() == 2\n",
                                                     entry_point="f")))
    assert result.status == "failed"
    _assert_clean(box)


def test_sysv_shared_memory_does_not_survive_into_the_next_run(box):
    create = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.shmat.restype = ctypes.c_void_p\n"
        "shmid = libc.shmget(0x1234, 4096, 0o1666)\n"
        "ctypes.memmove(libc.shmat(shmid, None, 0), b'secret', 6)\n"
        "print(shmid >= 0)\n"
    )
    probe = ("import ctypes\nprint(ctypes.CDLL(None).shmget(0x1234, 4096, 0o666))\n"
             "print(open('/proc/sysvipc/shm').read().count('\\n'))\n")
    first, _ = _run(box, create)
    second, _ = _run(box, probe)
    assert first.stdout.strip() == "True"
    assert second.stdout.split() == ["-1", "1"], second.stdout  # not found; only the header line is left
    _assert_clean(box)
