"""Evaluation: time limits, sandbox requests and result rows, the resumable results file, the Ray Data execution
stage, the whole generate -> execute pipeline as one call (`pipeline.evaluate`), metrics and the report."""
