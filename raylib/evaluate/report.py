"""Human-facing outputs of an evaluation: the pass@k table, report.md and a pass@k-against-k plot (PNG).

    from raylib.evaluate.report import pass_at_k_table, write_report
    print(pass_at_k_table(summary))
    write_report(summary, "runs/eval", title="humaneval: samples.jsonl")   # -> report.md, pass_at_k.png
"""

from __future__ import annotations

from pathlib import Path

from raylib.evaluate.metrics import STANDARD_KS

__all__ = ["pass_at_k_table", "plot_pass_at_k", "write_report"]


def _shown_ks(summary: dict) -> list[int]:
    ks = [row["k"] for row in summary.get("pass_at_k", [])]
    return [k for k in ks if k in STANDARD_KS or k == ks[-1]]


def pass_at_k_table(summary: dict) -> str:
    """A markdown table: overall pass@k (standard ks and the largest), then one row per difficulty if any."""
    ks = _shown_ks(summary)
    header = "| group | tasks | samples | " + " | ".join(f"pass@{k}" for k in ks) + " |"
    lines = [header, "|" + "---|" * (3 + len(ks))]
    lines.append(f"| all | {summary['tasks']} | {summary['samples']} | "
                 + " | ".join(f"{100 * summary[f'pass@{k}']:.2f}%" for k in ks) + " |")
    for name, group in summary.get("by_difficulty", {}).items():
        cells = [f"{100 * group[f'pass@{k}']:.2f}%" if f"pass@{k}" in group else "-" for k in ks]
        lines.append(f"| {name} | {group['tasks']} | {group['samples']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_pass_at_k(summary: dict, path: str | Path, title: str = "") -> Path | None:
    """pass@k against k (log-scaled k when it spans more than a decade); None when there is nothing to plot."""
    points = summary.get("pass_at_k", [])
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [p["k"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(ks, [100 * p["pass"] for p in points], marker="o" if len(ks) <= 30 else None, label="all")
    ax.set_xlabel("k (samples drawn)")
    ax.set_ylabel("pass@k (%)")
    if ks[-1] > 10:
        ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "pass@k")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(summary: dict, output_dir: str | Path, title: str) -> tuple[Path, Path | None]:
    """Write report.md (tables of pass@k, statuses, skipped input, infrastructure errors) and pass_at_k.png."""
    output_dir = Path(output_dir)
    png = plot_pass_at_k(summary, output_dir / "pass_at_k.png", title)
    lines = [f"# Evaluation: {title}", "", pass_at_k_table(summary), ""]
    lines += [f"{summary['tasks']} tasks ({summary['tasks_solved']} solved by at least one sample), {summary['samples']} "
              f"samples ({summary['samples_per_task']['min']}-{summary['samples_per_task']['max']} per task), "
              f"{summary['passed']} passed.", ""]
    lines += ["| status | samples |", "|---|---|"] + [f"| {s} | {n} |" for s, n in summary["statuses"].items()] + [""]
    if summary.get("judged_by"):
        lines += ["| judged by | samples |", "|---|---|"] + [f"| {m} | {n} |" for m, n in summary["judged_by"].items()] + [""]
    if summary.get("judging_note"):
        lines += [f"**Note:** {summary['judging_note']}.", ""]
    if summary.get("infra_errors"):
        lines += [f"**{summary['infra_errors']} samples could not be evaluated** (sandbox infrastructure failed); they "
                  "are left out of pass@k. Re-run with the same output directory to retry them.", ""]
    if summary.get("skipped_input"):
        lines += [f"Skipped {len(summary['skipped_input'])} invalid input lines:", ""]
        lines += [f"- {line}" for line in summary["skipped_input"][:50]] + [""]
    if summary.get("by_tag"):
        lines += ["| tag | tasks | pass@1 |", "|---|---|---|"]
        lines += [f"| {t} | {g['tasks']} | {100 * g['pass@1']:.2f}% |" for t, g in summary["by_tag"].items()] + [""]
    if png is not None:
        lines += [f"![pass@k]({png.name})", ""]
    md = output_dir / "report.md"
    md.write_text("\n".join(lines))
    return md, png
