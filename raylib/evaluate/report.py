"""Human-facing outputs of an evaluation: the pass@k table, report.md and a plot (PNG).

    from raylib.evaluate.report import pass_at_k_table, write_report
    print(pass_at_k_table(summary))
    write_report(summary, "runs/eval", title="humaneval: samples.jsonl")   # -> report.md, pass_at_k.png
"""

from __future__ import annotations

from pathlib import Path

from raylib.evaluate.metrics import STANDARD_KS
from raylib.files import atomic_write

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
    """The evaluation at a glance, as a PNG; None when there is nothing to plot.

    Several ks: pass@k against k (log-scaled k when it spans more than a decade). One k (e.g. greedy, n=1): pass@1
    overall and by difficulty (else by tag, the 12 largest), beside how the samples ended (counts by status).
    """
    points = summary.get("pass_at_k", [])
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(points) == 1:
        fig = _plot_single_k(plt, summary, title)
    else:
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


def _plot_single_k(plt, summary: dict, title: str):
    """Two panels: pass@1 per group (bars, with tasks per group), and samples per status."""
    k = summary["pass_at_k"][0]["k"]
    groups = summary.get("by_difficulty") or dict(sorted(summary.get("by_tag", {}).items(),
                                                         key=lambda item: -item[1]["tasks"])[:12])
    names = ["all", *groups]
    rates = [100 * summary[f"pass@{k}"], *(100 * g.get(f"pass@{k}", 0.0) for g in groups.values())]
    tasks = [summary["tasks"], *(g["tasks"] for g in groups.values())]
    statuses = summary.get("statuses", {})
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.5 * max(len(names), len(statuses), 4) + 1.5), dpi=120)
    bars = left.barh(names[::-1], rates[::-1], color=["#4c72b0"] * (len(names) - 1) + ["#dd8452"])
    for bar, rate, n in zip(bars, rates[::-1], tasks[::-1]):
        left.text(min(rate + 1, 80), bar.get_y() + bar.get_height() / 2, f"{rate:.1f}% of {n} tasks", va="center")
    left.set_xlim(0, 100)
    pad = (max(len(names), 4) - len(names)) / 2  # bars as thick with one group as with four, centred
    left.set_ylim(-0.7 - pad, len(names) - 0.3 + pad)
    left.set_xlabel(f"pass@{k} (%)")
    left.set_title("by difficulty" if summary.get("by_difficulty") else "by tag" if groups else "overall")
    left.grid(True, axis="x", alpha=0.3)
    ok = {"passed": "#55a868", "failed": "#c44e52", "timeout": "#8172b2", "compile-error": "#ccb974",
          "runtime-error": "#dd8452", "memory": "#da8bc3", "generation-error": "#8c8c8c", "sandbox-error": "#333333"}
    right.barh(list(statuses)[::-1], list(statuses.values())[::-1],
               color=[ok.get(s, "#937860") for s in list(statuses)[::-1]])
    for i, count in enumerate(list(statuses.values())[::-1]):
        right.text(count, i, f" {count}", va="center")
    right.set_xlabel("samples")
    right.set_title("how the samples ended")
    right.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title or f"pass@{k}")
    return fig


def write_report(summary: dict, output_dir: str | Path, title: str) -> tuple[Path, Path | None]:
    """Write report.md (tables of pass@k, statuses, skipped input, infrastructure errors) and pass_at_k.png."""
    output_dir = Path(output_dir)
    png = plot_pass_at_k(summary, output_dir / "pass_at_k.png", title)
    lines = [f"# Evaluation: {title}", "", pass_at_k_table(summary), ""]
    lines += [f"{summary['tasks']} tasks ({summary['tasks_solved']} solved by at least one sample), "
              f"{summary['samples']} samples ({summary['samples_per_task']['min']}-"
              f"{summary['samples_per_task']['max']} per task), {summary['passed']} passed.", ""]
    lines += ["| status | samples |", "|---|---|"] + [f"| {s} | {n} |" for s, n in summary["statuses"].items()] + [""]
    if summary.get("judged_by"):
        lines += (["| judged by | samples |", "|---|---|"]
                  + [f"| {m} | {n} |" for m, n in summary["judged_by"].items()] + [""])
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
    atomic_write(md, "\n".join(lines))
    return md, png
