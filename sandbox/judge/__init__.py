"""The judge: what decides verdicts, in processes no candidate ever runs in. Stdlib only.

`record.py` (the trusted recording: the dataset's reference solution under its own tests), `replay.py` (the tests
again, on a candidate's plain-data answers), `compare.py` (stdin/stdout outputs). The worker runs them in itself
(replay, comparison) or in judge children it forks as the judge uid (recording); never in a candidate's process,
which only ever receives the recorded arguments and sends back plain data.
"""
