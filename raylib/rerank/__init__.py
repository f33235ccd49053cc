"""Verifiers and reranking: score a problem's candidate programs without its hidden tests and pick the best.

    from raylib.rerank.pipeline import rerank
    result = rerank(problems, samples, "public-tests,orm", "runs/rerank", settings=VerifierSettings(...))

base.py holds the Verifier Protocol; verifiers/ one module per kind of evidence; selection.py and metrics.py the
pure math; stage.py and pipeline.py the Ray Data run (jobs/rerank.py is its command line).
"""
