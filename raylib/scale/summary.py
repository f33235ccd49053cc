"""What a scaling run adds up to: the curve (solved within k attempts), scale_summary.json, report.md, scaling.png.

    from raylib.scale.summary import scale_summary, solved_within, write_outputs
    solved_within(rows_by_task, budget, selection=False)     # {task_id: [solved with 1 attempt?, with 2?, ...]}
    summary = scale_summary(settings, rows_by_task, problems=len(rows_by_task))
    write_outputs(summary, "runs/scale/revision")     # report.md, and scaling.png of every run under the same root

Counting: for loops that judge in order (revision, self-refine, oracle best-of-n and beam) a problem is solved within
k when one of its first k attempts passed, and its trials are the attempts up to its first pass (all of them when
none passed: FTTT's "avg trials"). For loops that pick one answer (self-consistency, verifier modes, sample-debug) it
is solved within k when the pick among its first k candidates passed (this curve need not rise), and its trials are
the candidates drawn. `precision` = solved / problems at the full budget.
"""

from __future__ import annotations

import json
from pathlib import Path

from raylib.files import atomic_write, write_json

__all__ = ["SUMMARY_FILE", "compare_runs", "scale_summary", "solved_within", "write_outputs"]

SUMMARY_FILE = "scale_summary.json"


def solved_within(rows_by_task: dict[str, list[dict]], budget: int, selection: bool) -> dict[str, list[bool]]:
    """Per problem, solved within k attempts for k = 1..budget (see the module docstring)."""
    out = {}
    for task_id, rows in rows_by_task.items():
        if selection:
            solved_at = {k for r in rows if r.get("passed") for k in r.get("selected_for", ())}
            picked = sorted({k for r in rows for k in r.get("selected_for", ())})
            flags, last = [], False
            for k in range(1, budget + 1):
                if k in picked:
                    last = k in solved_at
                flags.append(last)  # fewer candidates than k (an engine error): the last pick stands
            out[task_id] = flags
        else:
            first = min((r["attempt"] for r in rows if r.get("passed")), default=None)
            out[task_id] = [first is not None and first < k for k in range(1, budget + 1)]
    return out


def _trials(rows: list[dict], selection: bool) -> int:
    if selection:
        return len({r.get("candidate", r["attempt"]) for r in rows})
    passed = [r["attempt"] for r in rows if r.get("passed")]
    return min(passed) + 1 if passed else sum(1 for r in rows if r.get("passed") is not None)


def scale_summary(settings, rows_by_task: dict[str, list[dict]], *, dataset: str, model: str,
                  tokens: dict | None = None) -> dict:
    """scale_summary.json's content (DESIGN.md contract): strategy, budget, problems, solved, precision, avg_trials,
    curve = [{"k", "solved"}], with the run's settings and token counts."""
    budget = settings.budget
    flags = solved_within(rows_by_task, budget, settings.selection)
    problems = len(rows_by_task)
    solved = sum(f[-1] for f in flags.values()) if budget else 0
    curve = [{"k": k, "solved": sum(f[k - 1] for f in flags.values())} for k in range(1, budget + 1)]
    trials = [_trials(rows, settings.selection) for rows in rows_by_task.values()]
    output_tokens = sum(r.get("tokens", {}).get("output", 0) for rows in rows_by_task.values() for r in rows)
    return {
        "strategy": settings.strategy, "budget": budget, "problems": problems, "solved": solved,
        "precision": solved / problems if problems else 0.0,
        "avg_trials": sum(trials) / len(trials) if trials else 0.0,
        "curve": curve,
        "mode": settings.mode if settings.strategy in ("best-of-n", "beam") else None,
        "feedback": settings.feedback if settings.strategy == "revision" else None,
        "verifier": settings.verifier if settings.selection and settings.strategy != "self-consistency" else None,
        "dataset": dataset, "model": model,
        "attempts": sum(len(rows) for rows in rows_by_task.values()),
        "judged": sum(1 for rows in rows_by_task.values() for r in rows if r.get("passed") is not None),
        "output_tokens": output_tokens, **(tokens or {}),
    }


def _label(summary: dict) -> str:
    extra = summary.get("mode") or summary.get("feedback") or summary.get("verifier")
    return f"{summary['strategy']}" + (f" ({extra})" if extra else "") + f", B={summary['budget']}"


def _runs_under(root: Path) -> list[tuple[Path, dict]]:
    runs = []
    for path in sorted(root.glob(f"*/{SUMMARY_FILE}")):
        try:
            runs.append((path.parent, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    return runs


def plot_runs(runs: list[tuple[Path, dict]], path: Path) -> Path | None:
    """Solved fraction against attempts, one line per run (log-scaled attempts past 16)."""
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    top = 1
    for _, s in runs:
        ks = [p["k"] for p in s["curve"]]
        if not ks:
            continue
        top = max(top, ks[-1])
        ax.plot(ks, [100 * p["solved"] / max(1, s["problems"]) for p in s["curve"]],
                marker="o" if len(ks) <= 32 else None, markersize=3, label=_label(s))
    ax.set_xlabel("attempts (k)")
    ax.set_ylabel("solved (%)")
    if top > 16:
        ax.set_xscale("log", base=2)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    first = runs[0][1]
    ax.set_title(f"{first['dataset']}: solved within k attempts ({first['problems']} problems)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def report_markdown(summary: dict) -> str:
    lines = [f"# {summary['dataset']}: {_label(summary)}", "",
             f"model: {summary['model']}", "",
             "| problems | solved | precision | avg trials | attempts | judged | output tokens |",
             "|---|---|---|---|---|---|---|",
             f"| {summary['problems']} | {summary['solved']} | {100 * summary['precision']:.2f}% | "
             f"{summary['avg_trials']:.2f} | {summary['attempts']} | {summary['judged']} | "
             f"{summary['output_tokens']} |", "",
             "| k | solved | solved (%) |", "|---|---|---|"]
    curve = summary["curve"]
    shown = [p for p in curve if p["k"] & (p["k"] - 1) == 0 or p["k"] == curve[-1]["k"]]  # powers of two + last
    for p in shown:
        lines.append(f"| {p['k']} | {p['solved']} | {100 * p['solved'] / max(1, summary['problems']):.2f}% |")
    return "\n".join(lines) + "\n"


def write_outputs(summary: dict, output: str | Path) -> None:
    """scale_summary.json and report.md in `output`; scaling.png there and, drawing every run beside it, in its
    parent (several strategies run into OUT/<name> share OUT/scaling.png)."""
    output = Path(output)
    write_json(output / SUMMARY_FILE, summary)
    atomic_write(output / "report.md", report_markdown(summary))
    plot_runs([(output, summary)], output / "scaling.png")
    siblings = _runs_under(output.parent)
    if len(siblings) > 1:
        plot_runs(siblings, output.parent / "scaling.png")


def compare_runs(root: str | Path) -> dict:
    """One table of every scaling run in ROOT's subfolders (e.g. FTTT, OpTune, revision and the PEFT baselines with
    the same budget): per dataset, each run's model, strategy, budget, solved, precision and average attempts.
    Writes ROOT/comparison.json and ROOT/comparison.md (and ROOT/scaling.png of all runs); returns the rows by
    dataset. ValueError when ROOT holds no run."""
    root = Path(root)
    runs = _runs_under(root)
    if not runs:
        raise ValueError(f"no scaling run (*/{SUMMARY_FILE}) under {root}")
    by_dataset: dict[str, list[dict]] = {}
    for folder, s in runs:
        by_dataset.setdefault(s["dataset"], []).append({
            "run": folder.name, "model": s["model"], "strategy": _label(s), "budget": s["budget"],
            "problems": s["problems"], "solved": s["solved"], "precision": s["precision"],
            "avg_trials": s["avg_trials"]})
    lines = []
    for dataset, rows in sorted(by_dataset.items()):
        rows.sort(key=lambda r: (-r["precision"], r["avg_trials"]))
        lines += [f"## {dataset}", "", "| run | model | strategy | problems | solved | precision | avg attempts |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['run']} | {r['model']} | {r['strategy']} | {r['problems']} | {r['solved']} | "
                  f"{100 * r['precision']:.2f}% | {r['avg_trials']:.2f} |" for r in rows]
        lines.append("")
    write_json(root / "comparison.json", by_dataset)
    atomic_write(root / "comparison.md", "# Scaling runs compared\n\n" + "\n".join(lines))
    plot_runs(runs, root / "scaling.png")
    return by_dataset
