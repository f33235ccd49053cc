"""A job's console: what the user sees (its config, one progress bar, the result table) apart from what libraries
say (Ray, vLLM, transformers, codeloop's own progress notes), which goes to OUTPUT/job.log.

    from raylib.console import job_console
    with job_console("runs/eval", verbose=cfg.verbose) as console:
        print("result table", file=console.out)       # the terminal (or pytest's capture)
        run_the_pipeline()                            # anything written to stdout/stderr, by Python or C code, in
                                                      # this process or forwarded by Ray from its workers: job.log

Redirection is at the file-descriptor level (C++ code such as Ray's core worker writes to fds 1 and 2 directly)
and at the Python level (`sys.stdout`/`sys.stderr`, logging handlers already bound to them). `verbose` copies
everything to the terminal as well. Everything is put back on exit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

__all__ = ["Console", "LOG_NAME", "job_console", "progress_bar"]

LOG_NAME = "job.log"
OWN_LOGGERS = ("raylib", "sandbox")  # codeloop's loggers: their INFO records go to the log


def progress_bar(total: int | None, desc: str, progress: bool | TextIO = True, initial: int = 0,
                 unit: str = "sample"):
    """The one progress bar shape of codeloop's jobs (tqdm): `progress` False hides it, True draws it on stderr, a
    stream draws it there (a job's `Console.err`)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, mininterval=1.0,
                disable=progress is False, file=None if isinstance(progress, bool) else progress)


@dataclass
class Console:
    """The job's own output streams (the terminal's stdout and stderr as they were before the redirection) and the
    log file everything else goes to."""

    out: TextIO
    err: TextIO
    log_path: Path

    @contextlib.contextmanager
    def follow(self, pattern: str, desc: str, unit: str = "step") -> Iterator[None]:
        """A progress bar on `err` driven by the log: each new line matching `pattern` (groups: done, total; an
        optional group named `loss` goes beside the bar) moves it. This is how a driver shows the progress of
        work whose output only reaches it as log lines, e.g. rank 0's "step 20/400 ..." forwarded by Ray."""
        regex = re.compile(pattern)
        bar = progress_bar(None, desc, self.err, unit=unit)
        stop = threading.Event()
        log = open(self.log_path, "rb")
        log.seek(0, os.SEEK_END)
        pending = b""

        def read_new() -> None:
            nonlocal pending
            *lines, pending = (pending + log.read()).split(b"\n")
            for line in lines:
                match = regex.search(line.decode("utf-8", "replace"))
                if match:
                    bar.total, bar.n = int(match[2]), int(match[1])
                    if "loss" in regex.groupindex and match["loss"]:
                        bar.set_postfix(loss=match["loss"], refresh=False)
                    bar.refresh()

        def tail() -> None:
            while not stop.wait(0.5):
                read_new()

        thread = threading.Thread(target=tail, daemon=True, name="job-console-follow")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            read_new()
            log.close()
            bar.close()


def _terminal(stream: TextIO, fd: int) -> tuple[TextIO, bool]:
    """A stream to the terminal that `stream` writes to, surviving the redirection of `fd`: a duplicate of `fd`
    when `stream` writes to it, else `stream` itself (pytest's capture, a StringIO). Returns (stream, owned)."""
    try:
        if stream.fileno() == fd:
            return os.fdopen(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8",
                             errors="replace"), True
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    return stream, False


def _retarget_handlers(old: tuple, new: TextIO) -> list[tuple[logging.StreamHandler, TextIO]]:
    """Point logging handlers that write to one of `old` at `new`; returns what to undo."""
    changed = []
    loggers = [logging.getLogger()] + [lg for lg in logging.root.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if (isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
                    and any(handler.stream is s for s in old)):
                changed.append((handler, handler.stream))
                handler.setStream(new)
    return changed


def _copy_pipe(read_fd: int, log_fd: int, terminal_fd: int) -> None:
    """--verbose: copy what the process writes to the log file and the terminal, until the pipe closes."""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        for fd in (log_fd, terminal_fd):
            with contextlib.suppress(OSError):
                os.write(fd, chunk)


@contextlib.contextmanager
def job_console(output_dir: str | Path, verbose: bool = False) -> Iterator[Console]:
    """Send this process's stdout/stderr to OUTPUT/job.log (appended) while the block runs; yields the `Console`
    whose `out`/`err` still reach the terminal. codeloop's own log records (OWN_LOGGERS, INFO and up) go to the
    log too. With `verbose`, everything is also shown live on the terminal's stderr."""
    log_path = Path(output_dir) / LOG_NAME
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    out, own_out = _terminal(sys.stdout, 1)
    err, own_err = _terminal(sys.stderr, 2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    copier = None
    if verbose:
        read_fd, target = os.pipe()
        terminal_fd = os.dup(err.fileno() if own_err else 2)
        copier = threading.Thread(target=_copy_pipe, args=(read_fd, log_fd, terminal_fd), daemon=True,
                                  name="job-console")
        copier.start()
    else:
        target = log_fd
    saved_fds = (os.dup(1), os.dup(2))
    saved_streams = (sys.stdout, sys.stderr)
    os.dup2(target, 1)
    os.dup2(target, 2)
    logs = os.fdopen(os.dup(target), "w", buffering=1, encoding="utf-8", errors="replace")
    sys.stdout = sys.stderr = logs
    undo = _retarget_handlers((*saved_streams, sys.__stdout__, sys.__stderr__), logs)
    handler = logging.StreamHandler(logs)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    levels = {}
    for name in OWN_LOGGERS:
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield Console(out=out, err=err, log_path=log_path)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(level)
        logs.flush()
        sys.stdout, sys.stderr = saved_streams
        for h, stream in undo:
            h.setStream(stream)
        _retarget_handlers((logs,), sys.stderr)  # handlers created during the block (e.g. Ray's, on import)
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        logs.close()
        for stream, owned in ((out, own_out), (err, own_err)):
            if owned:
                stream.close()
            else:
                stream.flush()
        if copier is not None:
            os.close(target)  # the copier sees end-of-file once no process holds the write end
            copier.join(timeout=2)
            if copier.is_alive():  # a child process still holds the pipe: the copier keeps its fds until then
                return
            os.close(read_fd)
            os.close(terminal_fd)
        os.close(log_fd)
