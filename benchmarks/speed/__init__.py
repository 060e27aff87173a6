"""Speed and memory benchmarks; results in docs/benchmarks.md and docs/scaling.md."""
