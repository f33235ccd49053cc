"""CodePrefBench-style evaluation of code judges: the bench files, each task asked in both orders, the accounting
(an unreadable verdict counts half), position bias, the summary, report and plot.

    from raylib.synth.bench import read_bench, summarize, write_bench_report
    tasks = read_bench("correctness-alignment.jsonl.gz")        # or a directory of bench files
    summary = summarize(tasks, {task.key: ("A", None), ...})    # verdicts per task: as given, swapped
    write_bench_report(summary, "runs/bench", title="pair-rm on CodePrefBench")

A bench row (CodePrefBench's format): "task_id", "instruction", "choices" (two programs), "gt_choice" (0 or 1: the
better one), and "objective" (correctness, efficiency, security, human-preference; else taken from a file named
OBJECTIVE-alignment.jsonl[.gz], as CodePrefBench names its files); "criteria" is optional (default: the objective's,
raylib.synth.pairs.OBJECTIVE_CRITERIA). jobs/synth_prefs.py --method execution writes bench.jsonl in this format.

Accounting, per task: asked once as stored (A = choices[0]) and once swapped (A = choices[1]); each ask scores 1 when
the verdict names the better program, 0 when it names the other, 0.5 when it names none (unreadable, tied or
failed); the task's accuracy is the mean of its two asks; an objective's accuracy the mean over its tasks. Position
bias = the share of decided verdicts naming A, minus 0.5 (0: none; +0.5: always A). Consistency = the share of
tasks whose two verdicts name the same program. Pure: matplotlib is imported only to plot.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Literal

from raylib.files import DataError, atomic_write, read_records
from raylib.synth.pairs import OBJECTIVE_CRITERIA

__all__ = ["BenchTask", "ask_score", "read_bench", "summarize", "without_comments", "write_bench_report"]

Verdict = Literal["A", "B"] | None


@dataclasses.dataclass(frozen=True)
class BenchTask:
    key: str                  # unique within the bench: objective/task_id, with #k when a task_id repeats
    task_id: str
    instruction: str
    choices: tuple[str, str]
    gt_choice: int            # index of the better program in `choices`
    objective: str
    criteria: str
    language: str = "python"


def _bench_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if re.search(r"\.(jsonl|json)(\.gz)?$", p.name))
        if not files:
            raise DataError(path, 0, "no bench file (.jsonl, .jsonl.gz, .json) in the directory")
        return files
    return [path]


def read_bench(path: str | Path, criteria: dict[str, str] | None = None) -> list[BenchTask]:
    """The tasks of a bench file, or of every bench file in a directory (sorted by name). `criteria`: per objective,
    the criteria of rows that give none (default: OBJECTIVE_CRITERIA).

    Raises:
        DataError: a missing file; a row without task_id/instruction, with choices that are not two strings, a
            gt_choice that is not 0 or 1, or no objective (names file, line and field); an empty bench.
    """
    defaults = {**OBJECTIVE_CRITERIA, **(criteria or {})}
    tasks: list[BenchTask] = []
    seen: dict[str, int] = {}
    for file in _bench_files(Path(path)):
        named = re.match(r"(.+?)-alignment\.", file.name)
        for line, row in read_records(file):
            for name in ("task_id", "instruction"):
                if not isinstance(row.get(name), str):
                    raise DataError(file, line, f"field {name!r} is missing or not a string (a CodePrefBench row has "
                                    "task_id, instruction, choices, gt_choice)")
            choices = row.get("choices")
            if not (isinstance(choices, list) and len(choices) == 2 and all(isinstance(c, str) for c in choices)):
                raise DataError(file, line, "field 'choices' must be a list of two programs (strings)")
            gt = row.get("gt_choice")
            if type(gt) is not int or gt not in (0, 1):
                raise DataError(file, line, f"field 'gt_choice' must be 0 or 1 (the better choice), got {gt!r}")
            objective = row.get("objective") or (named.group(1) if named else None)
            if not isinstance(objective, str):
                raise DataError(file, line, "no objective: give the row an 'objective' or name the file "
                                "OBJECTIVE-alignment.jsonl (e.g. correctness-alignment.jsonl)")
            if not isinstance(row.get("criteria", ""), str):
                raise DataError(file, line, "field 'criteria' must be a string")
            text = row.get("criteria") or defaults.get(objective)
            if not isinstance(text, str):
                raise DataError(file, line, f"objective {objective!r} has no default criteria "
                                f"({sorted(defaults)}): give the row a 'criteria'")
            base = f"{objective}/{row['task_id']}"
            seen[base] = seen.get(base, 0) + 1
            key = base if seen[base] == 1 else f"{base}#{seen[base]}"
            tasks.append(BenchTask(key, row["task_id"], row["instruction"], (choices[0], choices[1]), gt, objective,
                                   text, str(row.get("language") or "python")))
    if not tasks:
        raise DataError(path, 0, "the bench has no task")
    return tasks


def without_comments(code: str, language: str = "python") -> str:
    """`code` without its comments (Python: parsed and written back, which also normalises its layout; docstrings
    stay), as CodeFavor's evaluation shows programs to judges; unchanged when it does not parse or is not Python."""
    if language != "python":
        return code
    import ast

    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError):
        return code


def ask_score(verdict: Verdict, right: str) -> float:
    """1 when the verdict names the better program's letter `right`, 0 the other one, 0.5 none."""
    return 0.5 if verdict not in ("A", "B") else float(verdict == right)


def _right_letters(task: BenchTask) -> tuple[str, str]:
    """The better program's letter as stored and when swapped."""
    return "AB"[task.gt_choice], "AB"[1 - task.gt_choice]


def _group(tasks: list[BenchTask], verdicts: dict[str, tuple[Verdict, Verdict]]) -> dict:
    given_scores, swapped_scores, letters, consistent = [], [], [], 0
    for task in tasks:
        given, swapped = verdicts[task.key]
        right_given, right_swapped = _right_letters(task)
        given_scores.append(ask_score(given, right_given))
        swapped_scores.append(ask_score(swapped, right_swapped))
        letters += [v for v in (given, swapped) if v in ("A", "B")]
        # the same program both times: A as stored is B when swapped
        consistent += given in ("A", "B") and swapped in ("A", "B") and given != swapped
    n = len(tasks)
    asks = 2 * n
    return {"tasks": n,
            "accuracy": (sum(given_scores) + sum(swapped_scores)) / asks,
            "accuracy_as_given": sum(given_scores) / n,
            "accuracy_swapped": sum(swapped_scores) / n,
            "undecided": (asks - len(letters)) / asks,
            "position_bias": (letters.count("A") / len(letters) - 0.5) if letters else 0.0,
            "consistency": consistent / n}


def summarize(tasks: list[BenchTask], verdicts: dict[str, tuple[Verdict, Verdict]], meta: dict | None = None) -> dict:
    """bench_summary.json: {"tasks", "accuracy" (over every task), "macro_accuracy" (the mean over objectives),
    "undecided", "position_bias", "consistency", "objectives": {objective: the same per objective, plus
    accuracy_as_given / accuracy_swapped}, **meta}."""
    objectives: dict[str, list[BenchTask]] = {}
    for task in tasks:
        objectives.setdefault(task.objective, []).append(task)
    per = {name: _group(group, verdicts) for name, group in objectives.items()}
    overall = _group(tasks, verdicts)
    return {**overall, "macro_accuracy": sum(v["accuracy"] for v in per.values()) / len(per), "objectives": per,
            **(meta or {})}


def _table(summary: dict) -> str:
    lines = ["| objective | tasks | accuracy | as given | swapped | undecided | position bias | consistency |",
             "|---|---|---|---|---|---|---|---|"]
    rows = [*summary["objectives"].items(), ("all", summary)]
    for name, v in rows:
        lines.append(f"| {name} | {v['tasks']} | {100 * v['accuracy']:.2f}% | {100 * v['accuracy_as_given']:.2f}% | "
                     f"{100 * v['accuracy_swapped']:.2f}% | {100 * v['undecided']:.1f}% | {v['position_bias']:+.3f} | "
                     f"{100 * v['consistency']:.1f}% |")
    return "\n".join(lines)


def _plot(summary: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*summary["objectives"], "all"]
    groups = [*summary["objectives"].values(), summary]
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2.5, 4), dpi=120)
    width = 0.27
    for i, (field, label) in enumerate((("accuracy", "both orders"), ("accuracy_as_given", "as given"),
                                        ("accuracy_swapped", "swapped"))):
        ax.bar([k + (i - 1) * width for k in range(len(names))], [100 * g[field] for g in groups], width, label=label)
    ax.axhline(50, color="grey", linestyle=":", label="chance")
    ax.set_xticks(range(len(names)), [f"{name}\n({g['tasks']} tasks)" for name, g in zip(names, groups)])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def write_bench_report(summary: dict, output: str | Path, title: str) -> str:
    """Write report.md and accuracy.png into `output`; returns the report's text."""
    output = Path(output)
    png = _plot(summary, output / "accuracy.png", title)
    text = "\n".join([f"# Judge evaluation: {title}", "", _table(summary), "",
                      f"macro accuracy (mean over objectives): {100 * summary['macro_accuracy']:.2f}%", "",
                      "Each task is asked twice, as stored and with the programs swapped; an ask scores 1 when the "
                      "verdict names the better program, 0.5 when it names none (unreadable or tied), else 0. "
                      "Position bias: the share of decided verdicts naming A, minus 0.5. Consistency: tasks whose two "
                      "verdicts name the same program.", "", f"![accuracy]({png.name})", ""])
    atomic_write(output / "report.md", text)
    return text
