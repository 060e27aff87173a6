"""Metric gates for CI: ``--fail-below recall@20=0.05`` fails the run when a metric is under its threshold.

A gate is ``<metric>@<K>=<threshold>``. Parsing checks every gate against what the evaluation will compute
(the metric names and the cut-offs given with ``--k``) before anything is ranked, so a typo costs no
compute and is a ``UserError`` (exit 2). Checking compares each evaluated value with its threshold; a value
strictly below it, or a value that is not a number (NaN when no user has an item in the split), fails
the gate. ``check_gates`` raises one ``GateFailure`` (exit 3) that names every failed gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from recgoat_cli.errors import GateFailure, UserError

__all__ = ["Gate", "GateResult", "check_gates", "gate_results", "parse_gates"]


@dataclass(frozen=True)
class Gate:
    """The metric key (``"recall@20"``) and the lowest value that passes."""

    metric: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}={self.threshold:g}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    value: float

    @property
    def passed(self) -> bool:
        # NaN compares False with everything, so "not below" would let it pass; a gate wants a real number.
        return math.isfinite(self.value) and self.value >= self.gate.threshold

    def as_dict(self) -> dict:
        return {"metric": self.gate.metric, "threshold": self.gate.threshold, "value": self.value, "passed": self.passed}


def parse_gates(specs: Iterable[str], metric_names: Sequence[str], ks: Sequence[int], flag: str = "--fail-below") -> list[Gate]:
    """Parse ``["recall@20=0.05", ...]`` into gates on metrics that the evaluation computes.

    ``metric_names`` and ``ks`` are what will be evaluated; a gate on anything else is a ``UserError`` that
    says how to fix it (the known names, or ``--k K`` for a cut-off that is not evaluated).
    """
    gates = []
    known = ", ".join(sorted(metric_names))
    for spec in specs:
        key, eq, raw_threshold = spec.partition("=")
        name, at, raw_k = key.strip().partition("@")
        if not eq or not at or not name or not raw_k:
            raise UserError(f"{flag} {spec}: write each gate as METRIC@K=THRESHOLD, e.g. {flag} recall@20=0.05.")
        if name not in metric_names:
            raise UserError(f"{flag} {spec}: unknown metric '{name}'; use one of {known}.")
        if not raw_k.isdigit() or int(raw_k) < 1:
            raise UserError(f"{flag} {spec}: K must be a positive integer, e.g. {flag} {name}@20=0.05.")
        k = int(raw_k)
        if k not in ks:
            evaluated = " ".join(str(v) for v in ks)
            raise UserError(f"{flag} {spec}: {name}@{k} is not evaluated (--k {evaluated}); add --k {k}.")
        try:
            threshold = float(raw_threshold)
        except ValueError:
            threshold = math.nan
        if not math.isfinite(threshold):
            raise UserError(f"{flag} {spec}: the threshold '{raw_threshold}' is not a finite number, e.g. {flag} {name}@{k}=0.05.")
        gates.append(Gate(f"{name}@{k}", threshold))
    return gates


def gate_results(metrics: Mapping[str, float], gates: Iterable[Gate]) -> list[GateResult]:
    """Each gate with the evaluated value of its metric (every gate's metric must be in ``metrics``)."""
    return [GateResult(gate, float(metrics[gate.metric])) for gate in gates]


def check_gates(results: Iterable[GateResult]) -> None:
    """Raise ``GateFailure`` naming every failed gate, its value and its threshold; return when all pass."""
    failed = [r for r in results if not r.passed]
    if failed:
        raise GateFailure("; ".join(_describe_failure(r) for r in failed) + ".")


def _describe_failure(result: GateResult) -> str:
    gate = result.gate
    if math.isfinite(result.value):
        return f"{gate.metric} = {result.value:.6g} is below {gate.threshold:g}"
    return f"{gate.metric} is {result.value} (no user has an item in the split), gate {gate.threshold:g}"
