"""Files: reading JSONL with errors that name file and line, atomic writes, output-directory claims, and the
appendable, resumable JSONL store that samples.jsonl and results.jsonl both specialise.

    from raylib.files import DataError, JsonlStore, atomic_write, read_records, write_json, write_records
    for line, row in read_records("problems.jsonl"):      # DataError("problems.jsonl:7: malformed JSON ...")
        ...
    write_json("out/summary.json", summary)                # a kill leaves the old file or the new one
    changed = claim_output("out/evaluation_identity.json", {"dataset": "humaneval"})   # None, or "dataset"

Every file codeloop writes whole goes through `atomic_write` (a temporary file beside the target, fsync, rename);
files written as results arrive are `JsonlStore`s (appended, a torn last line cut on reopen, rewritten atomically
once at the end).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any, Hashable, Iterator

__all__ = ["DataError", "JsonlStore", "atomic_write", "claim_output", "read_appended_lines", "read_records",
           "write_json", "write_records"]


class DataError(ValueError):
    """Bad input data: names the file, the line (1-based; 0 when it is about the whole file) and the problem."""

    def __init__(self, path: str | Path, line: int, message: str):
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


# ------------------------------------------------------------------------------------------------- reading


def read_records(path: str | Path, bad_lines: list[DataError] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, JSON object) from a .jsonl or .json (a list) file, optionally gzipped; blank lines are
    skipped and a UTF-8 byte-order mark is allowed.

    Args:
        bad_lines: when given, a malformed line is appended to it as a `DataError` and skipped instead of raised.

    Raises:
        DataError: a missing or unreadable file; a malformed line (unless `bad_lines` is given).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, 0, "file not found")
    if path.is_dir():
        raise DataError(path, 0, "is a directory, expected a .jsonl/.jsonl.gz/.json file")
    suffixes = path.suffixes
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    is_list = (suffixes[-2:] == [".json", ".gz"]) if gzipped else path.suffix == ".json"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as f:
            if is_list:
                data = json.loads(f.read().decode("utf-8-sig"))
                if not isinstance(data, list):
                    raise DataError(path, 0, f"expected a JSON list of objects, got {type(data).__name__}")
                numbered = ((i, row, None) for i, row in enumerate(data, 1))
            else:
                numbered = _parse_lines(f)
            for number, row, error in numbered:
                if error is None and not isinstance(row, dict):
                    error = f"expected a JSON object, got {type(row).__name__}"
                if error is None:
                    yield number, row
                elif bad_lines is None:
                    raise DataError(path, number, error)
                else:
                    bad_lines.append(DataError(path, number, error))
    except DataError:
        raise
    except (UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        raise DataError(path, 0, f"cannot read: {exc}") from None


def _parse_lines(lines) -> Iterator[tuple[int, Any, str | None]]:
    for number, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at column {exc.start + 1})"
            continue
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield number, None, f"malformed JSON ({exc.msg} at column {exc.colno})"


def read_appended_lines(path: Path) -> list[str]:
    """The complete lines of a JSONL file that a killed process may have been appending to; a torn last line
    (no newline yet) is cut off the file. Missing file: no lines."""
    if not path.exists():
        return []
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
    if good < len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
    return data[:good].decode("utf-8").split("\n")[:-1]  # not splitlines(): rows may hold U+2028


# ------------------------------------------------------------------------------------------------- writing


def atomic_write(path: str | Path, text: str) -> Path:
    """Replace `path` with `text`: a temporary file beside it (same filesystem), fsync, rename. A kill at any point
    leaves the old file or the new one, never half of one. Parent directories are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # per process: two writers never share a temp file
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json(path: str | Path, value) -> Path:
    """Write `value` as indented JSON, atomically."""
    return atomic_write(path, json.dumps(value, indent=1))


def write_records(path: str | Path, rows: list[dict]) -> Path:
    """Write rows as JSONL, atomically."""
    return atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def claim_output(path: str | Path, identity: dict) -> str | None:
    """Tie an output directory to what its results depend on. `path` (e.g. OUTPUT/evaluation_identity.json) holds
    the `identity` of the run that made the outputs; a re-run with another identity must not resume them. Returns
    the changed keys ("dataset, model"), or None after recording `identity` (a first run, or the same one)."""
    path = Path(path)
    if path.exists():
        before = json.loads(path.read_text())
        changed = [k for k in identity if before.get(k) != identity[k]]
        if changed:
            return ", ".join(changed)
    write_json(path, identity)
    return None


# ------------------------------------------------------------------------------------------------- the store


class JsonlStore:
    """A JSONL file written as rows arrive and resumable after a crash or kill at any point.

    Rows are appended (one write + flush per batch). On open, rows from an earlier run are read back; a torn last
    line (the process died mid-write) is cut off. A row is kept as its JSON text; `finalize` rewrites the file once,
    atomically, one row per key (the latest), in the order the caller gives. Subclasses say what a row's key is
    (`key_of_row`) and whether a row is done for good (`is_done`; rows that are not, e.g. the infrastructure's
    failures, are kept but produced again by the next run).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lines: dict[Hashable, str] = {}  # key -> the row's JSON text
        self._done: set[Hashable] = set()
        for line in read_appended_lines(self.path):
            try:
                row = json.loads(line)
                key = self.key_of_row(row)
                self.remember(key, row)
            except (ValueError, KeyError, TypeError):
                continue  # unreadable (hand-edited?) rows are produced again, not trusted
            self._keep(key, line, row)
        self._file = open(self.path, "a", encoding="utf-8")

    # what a subclass decides
    def key_of_row(self, row: dict) -> Hashable:
        raise NotImplementedError

    def is_done(self, row: dict) -> bool:
        return True

    def remember(self, key: Hashable, row: dict) -> None:
        """Keep what the subclass needs of a row besides its text (called for every row kept)."""

    def _keep(self, key: Hashable, line: str, row: dict) -> None:
        self.lines[key] = line
        if self.is_done(row):
            self._done.add(key)
        else:
            self._done.discard(key)

    @property
    def done(self) -> set:
        """Keys produced for good; a copy: take it once, not per row."""
        return set(self._done)

    def append(self, rows: list[dict], lines: list[str] | None = None) -> int:
        """Append rows whose key is not done yet (a re-run batch may deliver them again); returns how many were
        written.

        Args:
            rows: the rows, or just the fields `key_of_row`, `is_done` and `remember` read when `lines` holds the
                rows' JSON text.
            lines: the rows as JSON text (one per row), written as they are.
        """
        if lines is None:
            lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        fresh = []
        for row, line in zip(rows, lines, strict=True):
            key = self.key_of_row(row)
            if key in self._done:
                continue
            self.remember(key, row)
            self._keep(key, line, row)
            fresh.append(line)
        if fresh:
            self._file.write("".join(line + "\n" for line in fresh))
            self._file.flush()
        return len(fresh)

    def append_lines(self, lines: list[str]) -> int:
        """`append` rows given as JSON text only."""
        return self.append([json.loads(line) for line in lines], lines)

    def rewrite(self, keys: list) -> None:
        """Rewrite the file with the rows of `keys`, in that order, atomically; appending goes on after it."""
        self._file.close()
        atomic_write(self.path, "".join(self.lines[k] + "\n" for k in keys))
        self._file = open(self.path, "a", encoding="utf-8")

    def set_aside(self, keys, suffix: str) -> None:
        """Append the rows of `keys` to a file beside this one (`results.jsonl` -> `results{suffix}.jsonl`)."""
        aside = self.path.with_name(self.path.stem + suffix + self.path.suffix)
        with open(aside, "a", encoding="utf-8") as f:
            f.write("".join(self.lines[k] + "\n" for k in keys))
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        self._file.close()
