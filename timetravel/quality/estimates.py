"""Population estimates from a stratified sample: the design-weighted mean and its error.

A context set is a stratified sample: stratum ``h`` holds ``N_h`` contexts of the population
and ``n_h`` of them were sampled (design weight ``N_h / n_h``). Under a disproportionate
allocation a plain sample mean over-represents the over-sampled strata; the stratified
estimator weights each stratum's mean by its population share instead:

    mean = sum_h W_h * mean_h,          W_h = N_h / N
    var  = sum_h W_h^2 * (1 - m_h / N_h) * s_h^2 / m_h

with ``mean_h`` and ``s_h^2`` over the ``m_h`` sampled contexts whose value is known (a
failed fetch or a null is treated as missing at random within its stratum). Strata with no
known value drop out and the others' shares are renormalised; that is said in ``note``.
Pure Python: the Spark side only supplies per-stratum moments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["StratumMoments", "Estimate", "stratified_mean", "Z95"]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class StratumMoments:
    """What one stratum's sample says about a field."""

    stratum: str
    population: float  # N_h: contexts in the stratum (the sum of its design weights)
    known: int  # m_h: sampled contexts with a value
    mean: float | None  # over those
    variance: float | None  # sample variance (n - 1) over those; None if known < 2


@dataclass(frozen=True)
class Estimate:
    """A population mean with its standard error and 95% interval."""

    mean: float
    se: float
    population: float  # N: the strata that contributed
    note: str = ""

    @property
    def low(self) -> float:
        return self.mean - Z95 * self.se

    @property
    def high(self) -> float:
        return self.mean + Z95 * self.se


def stratified_mean(strata: Iterable[StratumMoments]) -> Estimate | None:
    """The stratified estimate of the population mean, or None if no stratum has a value."""
    strata = list(strata)
    usable = [
        (s, s.mean) for s in strata if s.known > 0 and s.mean is not None and s.population > 0
    ]
    if not usable:
        return None
    total = sum(s.population for s, _ in usable)
    mean = sum(s.population / total * m for s, m in usable)
    variance = 0.0
    for s, _ in usable:
        share = s.population / total
        spread = s.variance if s.variance is not None else 0.0
        fpc = max(0.0, 1.0 - s.known / s.population)  # a census of the stratum: no error
        variance += share * share * fpc * spread / s.known
    dropped = len(strata) - len(usable)
    note = f"{dropped} strata without values left out; shares renormalised" if dropped else ""
    return Estimate(mean, math.sqrt(variance), total, note)
