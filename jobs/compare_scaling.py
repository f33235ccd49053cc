"""Compare scaling runs: every `jobs/scale.py` output folder under a root, one table per dataset (solved within the
budget, precision, average attempts) and one plot.

    python jobs/compare_scaling.py --root runs/ttt          # runs/ttt/fttt, runs/ttt/optune, runs/ttt/peft-lora, ...

Writes ROOT/comparison.md, ROOT/comparison.json and ROOT/scaling.png, and prints the table. The README's "Test-time
training" section has the commands that make a full comparison (FTTT, FTTT+, OpTune, revision and the PEFT
baselines trained by jobs/sft.py on the same training problems, all with the same attempt budget).
Exit status: 0 done; 2 no run under ROOT.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pydantic import Field  # noqa: E402

from raylib.config import JobConfig, load_config, log_config  # noqa: E402


class CompareConfig(JobConfig):
    root: str = Field(..., description="Folder whose subfolders are jobs/scale.py outputs.")


def main(argv: list[str] | None = None) -> int:
    cfg = load_config(CompareConfig, argv)
    from pathlib import Path

    from raylib.scale.summary import compare_runs

    log_config(cfg, cfg.root)
    try:
        compare_runs(cfg.root)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((Path(cfg.root) / "comparison.md").read_text())
    print(f"{cfg.root}/comparison.md, comparison.json, scaling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
