"""results.jsonl: one row per evaluated sample, written as results arrive and resumable after a kill.

    from raylib.evaluate.results_file import ResultsFile
    store = ResultsFile("out/results.jsonl")      # reads what an earlier (maybe killed) run wrote
    todo = [s for s in samples if store.key_of(s) not in store.done]

A result's key is (task_id, sample_id, program hash): a re-run with the same output directory skips every key already
evaluated, re-evaluates a sample whose program changed, and never writes a key twice. Rows whose status is
"sandbox-error" (the infrastructure failed, not the program) are not done: the next run evaluates them again.
"""

from __future__ import annotations

from raylib.data.samples import Sample
from raylib.evaluate.requests import HEAD_FIELDS, row_key
from raylib.files import JsonlStore
from sandbox.schema import INFRA_STATUS

__all__ = ["ResultsFile"]


def _head(row: dict) -> dict:
    """The HEAD_FIELDS of a row (`judged_by` may be absent: rows written before it existed)."""
    return {**{f: row[f] for f in HEAD_FIELDS if f != "judged_by"}, "judged_by": row.get("judged_by", "")}


class ResultsFile(JsonlStore):
    """results.jsonl (a `raylib.files.JsonlStore` keyed by (task_id, sample_id, program hash)). Besides each row's
    JSON text it keeps a small head (HEAD_FIELDS), so the driver never re-parses whole rows. `finalize` rewrites
    the file in sample order with one row per current sample; rows of samples no longer in the sample file move to
    results.stale.jsonl, never deleted."""

    def __init__(self, path):
        self.rows: dict[tuple, dict] = {}  # key -> head
        self.stale_rows = 0  # rows `finalize` moved to results.stale.jsonl
        super().__init__(path)

    def key_of_row(self, row: dict) -> tuple:
        return row_key(row["task_id"], row["sample_id"], row["program_sha"])

    def is_done(self, row: dict) -> bool:
        return row["status"] != INFRA_STATUS  # the infrastructure failed, not the program: evaluate it again

    def remember(self, key: tuple, row: dict) -> None:
        self.rows[key] = _head(row)

    @staticmethod
    def key_of(sample: Sample) -> tuple:
        return row_key(sample.task_id, sample.sample_id, sample.sha)

    def finalize(self, samples: list[Sample], problem_order: dict[str, int]) -> list[dict]:
        """Rewrite the file with exactly one row per sample that has one, in (problem, sample_id) order; returns
        their heads (HEAD_FIELDS) in that order."""
        ordered = sorted(samples, key=lambda s: (problem_order.get(s.task_id, 1 << 30), s.task_id, s.sample_id))
        keys = [k for k in map(self.key_of, ordered) if k in self.rows]
        stale = self.rows.keys() - set(keys)
        self.stale_rows = len(stale)
        if stale:
            self.set_aside(sorted(stale, key=str), ".stale")
        self.rewrite(keys)
        return [self.rows[k] for k in keys]
