"""Inside the isolation: what runs in the sandbox worker and in candidates' processes. Stdlib only.

`worker.py` (the supervisor and its zygote), `child.py` (a candidate's process: load the program, answer the calls
it is sent, or run it as a script), `testcode.py` (test-code mode: Python tests in the candidate's process),
`languages.py` (test-code mode for C++ and JavaScript), `plain.py` (the plain-data wire format). Nothing a
candidate's process computes is a verdict: it is a claim that sandbox/judge/ checks from outside that process.

The worker loads these files from source (`worker.load_isolated`); importing them as `sandbox.inside.X` is for tests.
"""
