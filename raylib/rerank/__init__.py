"""Verifiers and reranking: score a problem's candidate programs without its hidden tests and pick the best."""
