"""Test-time scaling with execution feedback: per-problem loops (revision, best-of-N, self-consistency, self-refine,
beam search, sample + debug) run for many problems at once, so the engines batch across problems. See jobs/scale.py.

Pure pieces: strategies (what to do next, from a problem's attempts so far), feedback (the texts), tasks (prompts,
answers and judging of code and math problems), summary (curve, report, plot). The Ray shell: runner.
"""
