"""Small learnable training sets for the training tests: a model can fit each in a few dozen steps.

    from tests.train_data import write_sft, write_reflection, write_pairs, write_orm
    write_sft(path, n=48, style="prompt_completion")    # def add_i(a, b): -> "    return a + b"
    write_pairs(path, tasks=24)                        # chosen adds, rejected subtracts/multiplies/returns b

The rule is the same everywhere: a correct `add` returns `a + b`. Tasks differ by function name, so a validation
split by task holds out names never trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

WRONG_BODIES = ("    return a - b\n", "    return a * b\n", "    return b\n")
RIGHT_BODY = "    return a + b\n"


def _write(path: str | Path, rows: list[dict]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def prompt(i: int) -> str:
    return f"def add_{i}(a, b):\n"


def write_sft(path, n: int = 48, style: str = "prompt_completion") -> Path:
    if style == "chat":
        rows = [{"messages": [{"role": "user", "content": f"Write add_{i}."},
                              {"role": "assistant", "content": prompt(i) + RIGHT_BODY}]} for i in range(n)]
    else:
        rows = [{"prompt": prompt(i), "completion": RIGHT_BODY} for i in range(n)]
    return _write(path, rows)


def write_reflection(path, n: int = 32) -> Path:
    rows = [{"messages": [
        {"role": "user", "content": [{"type": "text", "content": f"Write add_{i}."}]},
        {"role": "assistant", "content": [{"type": "code", "content": prompt(i) + WRONG_BODIES[i % 3]},
                                          {"type": "execution", "content": "AssertionError: add(1, 2) != 3"},
                                          {"type": "text", "content": "It must add."},
                                          {"type": "code", "content": prompt(i) + RIGHT_BODY}]},
        {"role": "user", "content": [{"type": "text", "content": "Now in one go."}]},
        {"role": "assistant", "content": [{"type": "code", "content": prompt(i) + RIGHT_BODY}]},
    ]} for i in range(n)]
    return _write(path, rows)


def write_pairs(path, tasks: int = 24) -> Path:
    rows = [{"task_id": f"t/{i}", "prompt": prompt(i), "chosen": prompt(i) + RIGHT_BODY,
             "rejected": prompt(i) + WRONG_BODIES[(i + k) % 3]} for i in range(tasks) for k in range(2)]
    return _write(path, rows)


def write_orm(path, tasks: int = 24) -> Path:
    rows = []
    for i in range(tasks):
        rows.append({"task_id": f"t/{i}", "prompt": prompt(i), "program": prompt(i) + RIGHT_BODY, "label": 1})
        rows.append({"task_id": f"t/{i}", "prompt": prompt(i), "program": prompt(i) + WRONG_BODIES[i % 3], "label": 0})
    return _write(path, rows)
