"""samples.jsonl: the generated samples, appended as they arrive and resumable after a kill at any point.

    from raylib.generate.samples_file import SamplesFile
    store = SamplesFile("out/samples.jsonl")     # what an earlier (maybe killed) run generated
    store.done                                   # {(task_id, sample_id), ...} generated for good

Rows (evalplus-compatible: task_id + solution or completion): task_id, sample_id, completion | solution,
raw_output (the whole answer), finish_reason, prompt_tokens, output_tokens, error ("" or why there is no answer),
retryable (the error was the infrastructure's), model.
"""

from __future__ import annotations

from raylib.files import JsonlStore

__all__ = ["SamplesFile"]


class SamplesFile(JsonlStore):
    """samples.jsonl (a `raylib.files.JsonlStore` keyed by (task_id, sample_id)). Rows whose error was the
    infrastructure's (`retryable`) are generated again. `finalize` rewrites the file in problem then sample order,
    so it reads like any evalplus sample file."""

    def key_of_row(self, row: dict) -> tuple[str, int]:
        return row["task_id"], int(row["sample_id"])

    def is_done(self, row: dict) -> bool:
        return not row.get("retryable")

    def finalize(self, problem_order: dict[str, int]) -> int:
        """Rewrite the file in (problem, sample_id) order, one row per key; returns the number of rows."""
        keys = sorted(self.lines, key=lambda k: (problem_order.get(k[0], 1 << 30), k[0], k[1]))
        self.rewrite(keys)
        return len(keys)
