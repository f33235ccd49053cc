"""How the host reaches a sandbox worker, whatever holds it (a bwrap process or a Docker container): the uids its
programs and its judge children run as, and the length-prefixed JSON frames the two sides talk in.

    from sandbox.link import Frames, claim_uid_range, run_uids
    uid_base, lock_fd = claim_uid_range()            # a uid range no other live sandbox on this host holds
    program_uid, judge_uid = run_uids(uid_base, 0)    # worker 0's
    frames = Frames(read_fd, write_fd); frames.send({"op": "ping"}); frames.recv(timeout=5)
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import time

__all__ = ["MAX_WORKERS", "Frames", "claim_uid_range", "run_uids"]

UID_RANGE_START = 200_000  # automatic ranges: far above the uids of real accounts and of explicit uid_base values
UID_RANGE_SIZE = 256  # per worker two uids: its programs' and its judge children's
MAX_WORKERS = UID_RANGE_SIZE // 2
UID_RANGES = 1024
UID_LOCK_DIR = "/tmp/codeloop-sandbox-uids"


def run_uids(uid_base: int, index: int) -> tuple[int, int]:
    """(uid of worker `index`'s programs, uid of its judge children): distinct, so a program can never signal, trace
    or read a process that judges it."""
    return uid_base + index, uid_base + MAX_WORKERS + index


def claim_uid_range() -> tuple[int, int]:
    """Claim a range of run uids no other live sandbox on this host holds; returns (uid_base, lock fd).

    The claim is an exclusive flock on one file per range: it lasts while the fd is open and ends when the process
    dies, however it dies, so a killed Ray actor never leaves a range claimed.
    """
    os.makedirs(UID_LOCK_DIR, mode=0o700, exist_ok=True)
    for slot in range(UID_RANGES):
        fd = os.open(os.path.join(UID_LOCK_DIR, f"range-{slot}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UID_RANGE_START + slot * UID_RANGE_SIZE, fd
    raise RuntimeError(f"all {UID_RANGES} sandbox uid ranges of this host are in use ({UID_LOCK_DIR})")


class Frames:
    """Length-prefixed JSON frames over file descriptors, with a deadline on reads."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd

    def send(self, obj) -> None:
        """Send `obj` as JSON, or `bytes` that already are JSON."""
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        data = struct.pack(">I", len(body)) + body
        view = memoryview(data)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("worker did not answer in time")
            ready, _, _ = select.select([self.rfd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.rfd, n - got)
            if not chunk:
                raise EOFError("worker closed its channel")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv(self, timeout: float):
        deadline = time.monotonic() + timeout
        (length,) = struct.unpack(">I", self._read_exact(4, deadline))
        return json.loads(self._read_exact(length, deadline))
