"""Execution traces (LLMExecutor): what to trace (sources), single-step items in LLMExecutor's format (items), reading
an executor model's answers strictly (answers), ASE and choosing among N predictions (ase); the Ray shell (runner).
The traces themselves come from the sandbox's trace mode (sandbox.schema.TraceSpec). See jobs/build_traces.py and
jobs/ase.py.
"""
