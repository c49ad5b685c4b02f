"""How far a field's distribution moved from a baseline run's (pure).

- numeric fields: the population stability index (PSI) over the baseline's decile bins,
  ``sum_i (a_i - b_i) * ln(a_i / b_i)`` (0: the same; 0.1 a small shift; 0.25 a large one);
- categorical fields: the Jensen-Shannon distance of the value frequencies (base 2, so in
  [0, 1]; the square root of the divergence, a metric).

Empty bins get a small floor so one new value does not make the index infinite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["psi", "js_distance", "decile_bin", "FLOOR"]

FLOOR = 1e-4


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    if total <= 0:
        return [1.0 / len(counts)] * len(counts)
    return [max(c / total, FLOOR) for c in counts]


def psi(baseline: Sequence[float], current: Sequence[float]) -> float:
    """The population stability index of ``current`` counts against ``baseline`` counts,
    bin by bin (both lists over the same bins)."""
    if len(baseline) != len(current) or not baseline:
        raise ValueError("psi needs the same, non-empty list of bins on both sides")
    b, a = _shares(baseline), _shares(current)
    return sum((x - y) * math.log(x / y) for x, y in zip(a, b, strict=True))


def js_distance(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    """The Jensen-Shannon distance (base 2) between two value -> count mappings."""
    keys = sorted(set(baseline) | set(current))
    if not keys:
        return 0.0
    p = _plain_shares([baseline.get(k, 0.0) for k in keys])
    q = _plain_shares([current.get(k, 0.0) for k in keys])
    m = [(x + y) / 2 for x, y in zip(p, q, strict=True)]

    def kl(x: list[float]) -> float:
        return sum(xi * math.log2(xi / mi) for xi, mi in zip(x, m, strict=True) if xi > 0)

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def _plain_shares(counts: list[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total > 0 else [0.0] * len(counts)


def decile_bin(value: float, edges: Sequence[float]) -> int:
    """The bin of ``value`` among sorted ``edges``: how many edges are at or below it."""
    return sum(value >= e for e in edges)
