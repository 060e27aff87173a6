"""recgoat's benchmarks, run from the repository root as modules: ``python -m benchmarks.speed.epoch_time``.

``speed/`` times parts of the package (epochs, evaluation, kNN build, embedding, start-up, scaling);
``studies/`` measures accuracy (seeds, tuning plans, ablations, what-if rankers); ``gpu/`` holds the shell
scripts run on a lent GPU machine. What they share is in ``common.py``. Results go to docs/benchmarks.md,
docs/results.md and docs/scaling.md.
"""
