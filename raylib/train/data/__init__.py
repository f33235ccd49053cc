"""Training data: SFT and reflection examples, reward and preference examples, and datasets built from
evaluation results (ORM labels, pass-vs-fail pairs, rejection-sampled SFT)."""
