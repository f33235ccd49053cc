"""Training: settings, the Ray Train runner, the per-worker loop, one module per objective, batching, PEFT adapters;
`data/` turns files and evaluation results into training examples."""
