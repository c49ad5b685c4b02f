"""The design-weighted estimate against the demo world's truth (no Spark).

Many stratified samples of one population, drawn as the selection stage draws them (exact
per-stratum sizes from ``allocate``, simple random sampling within each stratum) under a
disproportionate allocation (equal per stratum): the 95% interval of the weighted estimate
covers the population mean about 95% of the time; the plain sample mean is visibly biased.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from timetravel.collect.sampling import allocate
from timetravel.config import Allocation
from timetravel.demo.world import World
from timetravel.quality.estimates import StratumMoments, stratified_mean

T = "2026-06-01T00:00:00Z"
SAMPLES = 400


@pytest.fixture(scope="module")
def population() -> tuple[np.ndarray, np.ndarray]:
    """Total plays at T of every member the world has at T, and each one's stratum: how
    intensely they watch (the selection's 'intensity' stratum, by plays per day)."""
    world = World(seed=7, members=2000)
    ids = list(range(world.members))
    answers = world.answer("viewing-history", ids, T)
    known = [i for i, a in enumerate(answers) if a is not None]
    plays = np.array([answers[i]["total_plays"] for i in known], dtype=float)
    strata = np.digitize(world.attributes(ids)["intensity"][known], [0.3, 1.0])
    return plays, strata


def moments(values: np.ndarray, population: int, key: str) -> StratumMoments:
    return StratumMoments(
        key,
        float(population),
        len(values),
        float(values.mean()),
        float(values.var(ddof=1)) if len(values) > 1 else None,
    )


def test_weighted_interval_covers_the_truth_and_the_plain_mean_is_biased(
    population: tuple[np.ndarray, np.ndarray],
) -> None:
    plays, strata = population
    truth = plays.mean()
    sizes = {str(k): int((strata == k).sum()) for k in range(3)}
    plans = allocate(sizes, Allocation(method="equal", sample_size=240)).plans
    assert len({p.sample for p in plans.values()}) == 1  # disproportionate: 80 each
    rng = np.random.default_rng(11)
    covered, weighted, plain = 0, [], []
    for _ in range(SAMPLES):
        parts = {
            key: rng.choice(plays[strata == int(key)], size=plan.sample, replace=False)
            for key, plan in plans.items()
        }
        estimate = stratified_mean(moments(v, sizes[k], k) for k, v in parts.items())
        assert estimate is not None and estimate.population == len(plays)
        covered += estimate.low <= truth <= estimate.high
        weighted.append(estimate.mean)
        plain.append(np.concatenate(list(parts.values())).mean())
    coverage = covered / SAMPLES
    # 95% nominal; binomial noise over 400 samples is about +-1.1 points.
    assert 0.915 <= coverage <= 0.985, coverage
    spread = np.std(weighted) / math.sqrt(SAMPLES)
    assert abs(np.mean(weighted) - truth) < 4 * spread  # unbiased
    bias = np.mean(plain) - truth
    assert abs(bias) > 10 * spread  # the heavy watchers' stratum is over-sampled
    assert abs(bias) / truth > 0.03, (bias, truth)


def test_hand_computed_estimate_and_its_edges() -> None:
    # Stratum a: N=100, 4 known values 1,2,3,4 (mean 2.5, s2 = 5/3); b: N=300, 2 values 10, 14
    # (mean 12, s2 = 8). W = 0.25 / 0.75. mean = 0.625 + 9 = 9.625.
    # var = 0.0625 * (1 - 4/100) * (5/3) / 4 + 0.5625 * (1 - 2/300) * 8 / 2
    a = StratumMoments("a", 100, 4, 2.5, 5 / 3)
    b = StratumMoments("b", 300, 2, 12.0, 8.0)
    estimate = stratified_mean([a, b])
    assert estimate is not None
    expected_var = 0.0625 * 0.96 * (5 / 3) / 4 + 0.5625 * (298 / 300) * 8 / 2
    assert estimate.mean == pytest.approx(9.625)
    assert estimate.se == pytest.approx(math.sqrt(expected_var))
    assert estimate.low == pytest.approx(9.625 - 1.959963984540054 * math.sqrt(expected_var))
    # A census of a stratum has no sampling error; a stratum with no values drops out.
    census = stratified_mean([StratumMoments("a", 4, 4, 2.5, 5 / 3)])
    assert census is not None and census.se == 0.0
    empty = StratumMoments("c", 50, 0, None, None)
    partial = stratified_mean([a, empty])
    assert partial is not None and partial.mean == 2.5 and "1 strata" in partial.note
    assert stratified_mean([empty]) is None
