"""Human-facing outputs of a rerank run: the table, report.md and best_of_k.png.

    from raylib.rerank.report import best_of_k, rerank_table, write_rerank_report
    curves = best_of_k(per_problem)             # {"k": [1..n], "pass@k": [...], "verifiers": {name: [...]}}
    print(rerank_table(summary))
    write_rerank_report(summary, "runs/rerank", title="humaneval: samples.jsonl")   # -> report.md, best_of_k.png
"""

from __future__ import annotations

from pathlib import Path

from raylib.files import atomic_write

__all__ = ["best_of_k", "difficulty_table", "plot_best_of_k", "rerank_table", "write_rerank_report"]

_DIFFICULTY_ORDER = ("easy", "medium", "medium_hard", "hard", "very_hard")


def best_of_k(per_problem: dict[str, dict[str, tuple]]) -> dict:
    """Mean over problems, for k = 1 .. the fewest candidates a problem has: each verifier's top-1 among k random
    candidates (raylib.rerank.metrics.best_of_k_curve), pass@k (the oracle among the same k) and pass@1 (a random
    pick). Scores are the ones given among all n candidates: for relative scores (clustering, self-consistency,
    Copeland, rvbs) the curve is the pick among k of a verifier that saw all n, not one scored on those k alone."""
    from raylib.rerank.metrics import best_of_k_curve

    if not per_problem:
        return {"k": [], "pass@k": [], "verifiers": {}}
    n = min(len(passed) for verifiers in per_problem.values() for _, passed in verifiers.values())
    ks = list(range(1, n + 1))
    names = list(next(iter(per_problem.values())))
    sums = {name: [0.0] * n for name in names}
    oracle = [0.0] * n
    for verifiers in per_problem.values():
        for index, name in enumerate(names):
            curve = best_of_k_curve(*verifiers[name], ks)
            for k in ks:
                sums[name][k - 1] += curve[k]["top1"]
                if index == 0:
                    oracle[k - 1] += curve[k]["pass@k"]
    count = len(per_problem)
    return {"k": ks, "pass@k": [round(v / count, 6) for v in oracle],
            "verifiers": {name: [round(v / count, 6) for v in values] for name, values in sums.items()}}


def rerank_table(summary: dict) -> str:
    """A markdown table: per verifier (and chain) top1, pass@1, pass@n, rank@k and problems scored all-unknown."""
    verifiers = summary["verifiers"]
    ranks = sorted({key for v in verifiers.values() for key in v if key.startswith("rank@")},
                   key=lambda key: int(key.split("@")[1]))
    header = "| verifier | tasks | top1 | pass@1 | pass@n | " + " | ".join(ranks) + (" | " if ranks else "")
    lines = [header + "unknown |", "|" + "---|" * (6 + len(ranks))]
    for name, v in verifiers.items():
        cells = [f"{100 * v[key]:.2f}%" for key in ("top1", "pass@1", "pass@n", *ranks) if key in v]
        lines.append(f"| {name} | {v['tasks']} | " + " | ".join(cells) + f" | {v['all_unknown']} |")
    return "\n".join(lines)


def difficulty_table(summary: dict) -> str | None:
    """CodePRM's table shape: a column per difficulty (easy, medium, hard, ..., then all), a row each for pass@1 and
    pass@n (a random sample; any sample) and each verifier's reranked top-1. None when no problem has a difficulty."""
    verifiers = summary["verifiers"]
    groups = next((v["by_difficulty"] for v in verifiers.values() if v.get("by_difficulty")), None)
    if not groups:
        return None
    order = sorted(groups, key=lambda g: (_DIFFICULTY_ORDER.index(g.lower()) if g.lower() in _DIFFICULTY_ORDER
                                          else len(_DIFFICULTY_ORDER), g))
    first = next(iter(verifiers.values()))

    def row(label: str, overall: dict, by_group: dict, key: str) -> str:
        cells = [f"{100 * by_group[g][key]:.2f}%" if g in by_group else "-" for g in order]
        return f"| {label} | " + " | ".join(cells) + f" | {100 * overall[key]:.2f}% |"

    lines = ["| | " + " | ".join(f"{g} ({groups[g]['tasks']})" for g in order) + f" | all ({first['tasks']}) |",
             "|" + "---|" * (len(order) + 2),
             row("pass@1", first, first["by_difficulty"], "pass@1"),
             row("pass@n", first, first["by_difficulty"], "pass@n")]
    lines += [row(f"{name} top-1", v, v.get("by_difficulty") or {}, "top1") for name, v in verifiers.items()]
    return "\n".join(lines)


def plot_best_of_k(curves: dict, path: str | Path, title: str = "") -> Path | None:
    """Top-1 accuracy among k candidates against k: random pick (pass@1), each verifier, and the oracle (pass@k);
    None when there is nothing to plot."""
    ks = curves["k"]
    if not ks:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    marker = "o" if len(ks) <= 20 else None
    ax.plot(ks, [100 * v for v in curves["pass@k"]], color="black", linestyle="--", label="oracle (pass@k)")
    ax.plot(ks, [100 * curves["pass@k"][0]] * len(ks), color="grey", linestyle=":", label="random pick (pass@1)")
    for name, values in curves["verifiers"].items():
        ax.plot(ks, [100 * v for v in values], marker=marker, label=name)
    ax.set_xlabel("k (candidates reranked)")
    ax.set_ylabel("top-1 passes (%)")
    if ks[-1] > 20:
        ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "best of k")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def write_rerank_report(summary: dict, curves: dict, output_dir: str | Path, title: str) -> tuple[Path, Path | None]:
    """Write report.md (the table, groups by difficulty/tag, unknown scores) and best_of_k.png."""
    output_dir = Path(output_dir)
    png = plot_best_of_k(curves, output_dir / "best_of_k.png", title)
    lines = [f"# Reranking: {title}", "", rerank_table(summary), "",
             f"{summary['problems']} problems, {summary['samples']} samples. top1: how often the top-scored sample "
             "passes the hidden tests (ties: the mean over the tied samples); pass@1: a random sample; pass@n: any "
             "sample (the ceiling); rank@k: any of the k top-scored passes (CodePRM). unknown: problems whose scores "
             "are all unknown (e.g. the problem shows no tests); their pick is a random one.", ""]
    by_difficulty = difficulty_table(summary)
    if by_difficulty:
        lines += ["## By difficulty (CodePRM's table)", "", by_difficulty, ""]
    for name, v in summary["verifiers"].items():
        for group in ("by_difficulty", "by_tag"):
            if v.get(group):
                lines += [f"## {name}, {group.replace('by_', 'by ')}", "", "| group | tasks | top1 | pass@1 | pass@n |",
                          "|---|---|---|---|---|"]
                lines += [f"| {g} | {s['tasks']} | {100 * s['top1']:.2f}% | {100 * s['pass@1']:.2f}% | "
                          f"{100 * s['pass@n']:.2f}% |" for g, s in v[group].items()] + [""]
    if png is not None:
        lines += [f"![best of k]({png.name})", ""]
    md = output_dir / "report.md"
    atomic_write(md, "\n".join(lines))
    return md, png
