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

A proportion is the mean of a 0/1 indicator (its stratum variance ``p_h (1 - p_h) m_h /
(m_h - 1)``). A quantile is read off the population's distribution function, estimated as
``F(x) = sum_h W_h F_h(x)`` from each stratum's percentiles (``F_h`` linear between them);
its standard error comes from Woodruff's interval: the error of ``F`` at the estimate, carried
back through ``F``'s inverse (Woodruff 1952; Särndal, Swensson & Wretman, *Model Assisted
Survey Sampling*, 5.11).
Pure Python: the Spark side only supplies per-stratum moments and percentiles.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "StratumMoments",
    "StratumDistribution",
    "Estimate",
    "stratified_mean",
    "proportion_moments",
    "stratified_quantiles",
    "Z95",
]

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


def proportion_moments(stratum: str, population: float, hits: int, known: int) -> StratumMoments:
    """A stratum's moments of the indicator "the value is the one counted" (``hits`` of the
    ``known`` sampled values), for :func:`stratified_mean` to estimate a proportion."""
    if known <= 0:
        return StratumMoments(stratum, population, 0, None, None)
    share = hits / known
    variance = share * (1 - share) * known / (known - 1) if known > 1 else None
    return StratumMoments(stratum, population, known, share, variance)


@dataclass(frozen=True)
class StratumDistribution:
    """One stratum's sampled values as percentiles: ``points[j]`` is the value at cumulative
    share ``j / (len(points) - 1)`` (so the first is the minimum and the last the maximum)."""

    stratum: str
    population: float  # N_h
    known: int  # m_h: sampled contexts with a value
    points: Sequence[float]


def _cdf(points: Sequence[float], x: float, *, left: bool = False) -> float:
    """The stratum's distribution function at ``x`` (its limit from the left if ``left``),
    linear between its percentiles; a run of equal percentiles is a jump."""
    steps = len(points) - 1
    if steps == 0:
        below = points[0] < x if left else points[0] <= x
        return 1.0 if below else 0.0
    j = (bisect_left(points, x) if left else bisect_right(points, x)) - 1
    if j < 0:
        return 0.0
    if j >= steps:
        return 1.0
    low, high = points[j], points[j + 1]
    return (j + (x - low) / (high - low)) / steps


def _mixture_quantile(parts: Sequence[tuple[float, Sequence[float]]], q: float) -> float:
    """The smallest ``x`` with ``sum_h W_h F_h(x) >= q`` (``parts``: (W_h, points))."""
    breaks = sorted({p for _, points in parts for p in points})

    def at(x: float, *, left: bool = False) -> float:
        return sum(share * _cdf(points, x, left=left) for share, points in parts)

    previous, before = breaks[0], at(breaks[0])
    if q <= before:
        return previous
    for b in breaks[1:]:
        reached = at(b, left=True)
        if q <= reached:  # F is linear on (previous, b)
            return previous + (q - before) / (reached - before) * (b - previous)
        after = at(b)
        if q <= after:  # a jump at b covers q
            return b
        previous, before = b, after
    return breaks[-1]


def stratified_quantiles(
    strata: Iterable[StratumDistribution], probabilities: Sequence[float]
) -> list[Estimate] | None:
    """Population quantiles at ``probabilities``, each with its Woodruff standard error, or
    None if no stratum has a value. Strata without values drop out, as for the mean."""
    strata = list(strata)
    usable = [s for s in strata if s.known > 0 and s.points and s.population > 0]
    if not usable:
        return None
    total = sum(s.population for s in usable)
    parts = [(s.population / total, list(s.points)) for s in usable]
    dropped = len(strata) - len(usable)
    note = f"{dropped} strata without values left out; shares renormalised" if dropped else ""
    estimates = []
    for q in probabilities:
        x = _mixture_quantile(parts, q)
        variance = 0.0
        for s, (share, points) in zip(usable, parts, strict=True):
            if s.known < 2:
                continue
            p = _cdf(points, x)
            fpc = max(0.0, 1.0 - s.known / s.population)
            variance += share * share * fpc * p * (1 - p) / (s.known - 1)
        half = Z95 * math.sqrt(variance)
        low = _mixture_quantile(parts, max(0.0, q - half))
        high = _mixture_quantile(parts, min(1.0, q + half))
        estimates.append(Estimate(x, (high - low) / (2 * Z95), total, note))
    return estimates
