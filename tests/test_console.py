"""raylib.console.job_console: what a job shows apart from what libraries say, down to the file descriptors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from raylib.console import job_console


def test_library_output_goes_to_the_log_and_the_job_s_own_lines_to_the_terminal(tmp_path, capfd):
    with job_console(tmp_path) as console:
        print("python-level chatter")
        print("python-level warning", file=sys.stderr)
        os.write(1, b"c-level chatter\n")  # what C++ code (Ray's core worker) writes
        os.write(2, b"c-level warning\n")
        subprocess.run(["echo", "a child process"], check=True)
        logging.getLogger("raylib.some.module").info("codeloop's own progress note")
        print("the result table", file=console.out)
        print("error: shown to the user", file=console.err)
    out, err = capfd.readouterr()
    assert out == "the result table\n" and err == "error: shown to the user\n"
    log = (tmp_path / "job.log").read_text()
    for line in ("python-level chatter", "python-level warning", "c-level chatter", "c-level warning",
                 "a child process", "INFO raylib.some.module: codeloop's own progress note"):
        assert line in log
    assert "the result table" not in log


def test_everything_is_put_back_after_the_job(tmp_path, capfd):
    before = (sys.stdout, sys.stderr, os.fstat(1).st_ino, os.fstat(2).st_ino)
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger("some.library").addHandler(handler)
    try:
        with job_console(tmp_path):
            assert handler.stream is sys.stderr and sys.stderr is not before[1]  # the library's handler: the log
            late = logging.StreamHandler(sys.stderr)  # a handler made during the job (e.g. `import ray`)
            logging.getLogger("late.library").addHandler(late)
        assert (sys.stdout, sys.stderr, os.fstat(1).st_ino, os.fstat(2).st_ino) == before
        assert handler.stream is before[1] and late.stream is sys.stderr
        os.write(1, b"after\n")
        print("after, python")
        assert capfd.readouterr().out == "after\nafter, python\n"
    finally:
        logging.getLogger("some.library").removeHandler(handler)
        logging.getLogger("late.library").handlers.clear()


def test_verbose_shows_library_output_live_and_still_logs_it(tmp_path, capfd):
    with job_console(tmp_path, verbose=True) as console:
        os.write(1, b"c-level chatter\n")
        print("python-level chatter", flush=True)
        print("the result table", file=console.out)
    out, err = capfd.readouterr()
    assert out == "the result table\n"
    assert "c-level chatter" in err and "python-level chatter" in err
    log = (tmp_path / "job.log").read_text()
    assert "c-level chatter" in log and "python-level chatter" in log


def test_a_progress_bar_follows_the_lines_workers_write_to_the_log(tmp_path, capfd):
    from raylib.train.loop import STEP_LINE

    with job_console(tmp_path) as console:
        print("step 3/10 epoch 0 loss 2.5000 lr 0.001 (from a stale run)", flush=True)  # before: not followed
        with console.follow(STEP_LINE, desc="training"):
            for step in (2, 4, 10):  # as Ray forwards rank 0's lines: into this process's stdout, i.e. the log
                print(f"(RayTrainWorker pid=1) step {step}/10 epoch 0 loss {1 / step:.4f} lr 0.001", flush=True)
    err = capfd.readouterr().err
    assert "training" in err and "10/10" in err and "loss=0.1000" in err
    assert "3/10" not in err
