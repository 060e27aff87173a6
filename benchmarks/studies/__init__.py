"""Accuracy studies (seeds, tuning plans, ablations, what-if rankers); results in docs/results.md."""
