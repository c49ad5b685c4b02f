"""The design-weighted estimate against the demo world's truth (no Spark).

Many stratified samples of one population, drawn as the selection stage draws them (exact
per-stratum sizes from ``allocate``, simple random sampling within each stratum) under a
disproportionate allocation (equal per stratum): the 95% interval of the weighted estimate
covers the population mean about 95% of the time; the plain sample mean is visibly biased.
The same holds for a proportion and for the median (Woodruff's interval, from per-stratum
percentiles as the quality stage computes them). Then each estimator against hand-computed
values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from timetravel.collect.sampling import allocate
from timetravel.config import Allocation
from timetravel.demo.world import World
from timetravel.quality.estimates import (
    Estimate,
    StratumDistribution,
    StratumMoments,
    proportion_moments,
    stratified_mean,
    stratified_quantiles,
)

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
    assert_covers_unbiased_and_plain_is_biased(covered, weighted, plain, truth)


def assert_covers_unbiased_and_plain_is_biased(
    covered: int, weighted: list[float], plain: list[float], truth: float
) -> None:
    coverage = covered / SAMPLES
    # 95% nominal; binomial noise over 400 samples is about +-1.1 points.
    assert 0.915 <= coverage <= 0.985, coverage
    spread = np.std(weighted) / math.sqrt(SAMPLES)
    assert abs(np.mean(weighted) - truth) < 4 * spread  # unbiased
    bias = np.mean(plain) - truth
    assert abs(bias) > 10 * spread  # the heavy watchers' stratum is over-sampled
    assert abs(bias) / abs(truth) > 0.03, (bias, truth)


GRID = [j / 100 for j in range(101)]  # the per-stratum percentiles the quality stage takes


def test_weighted_proportion_and_median_cover_the_truth_and_plain_ones_are_biased(
    population: tuple[np.ndarray, np.ndarray],
) -> None:
    plays, strata = population
    threshold = float(np.median(plays))
    true_share, true_median = float((plays > threshold).mean()), float(np.median(plays))
    sizes = {str(k): int((strata == k).sum()) for k in range(3)}
    plans = allocate(sizes, Allocation(method="equal", sample_size=240)).plans
    rng = np.random.default_rng(12)
    shares: tuple[list[float], list[float]] = ([], [])
    medians: tuple[list[float], list[float]] = ([], [])
    covered_share = covered_median = 0
    for _ in range(SAMPLES):
        parts = {
            key: rng.choice(plays[strata == int(key)], size=plan.sample, replace=False)
            for key, plan in plans.items()
        }
        share = stratified_mean(
            proportion_moments(k, sizes[k], int((v > threshold).sum()), len(v))
            for k, v in parts.items()
        )
        quantiles = stratified_quantiles(
            (
                StratumDistribution(k, sizes[k], len(v), np.quantile(v, GRID).tolist())
                for k, v in parts.items()
            ),
            [0.5],
        )
        assert share is not None and quantiles is not None
        median = quantiles[0]
        covered_share += share.low <= true_share <= share.high
        covered_median += median.low <= true_median <= median.high
        sample = np.concatenate(list(parts.values()))
        shares[0].append(share.mean)
        shares[1].append(float((sample > threshold).mean()))
        medians[0].append(median.mean)
        medians[1].append(float(np.median(sample)))
    assert_covers_unbiased_and_plain_is_biased(covered_share, *shares, true_share)
    assert_covers_unbiased_and_plain_is_biased(covered_median, *medians, true_median)


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


def test_hand_computed_proportion() -> None:
    # a: N=100, 3 of 4 known values are "basic" (p=0.75, s2 = 0.75*0.25*4/3 = 0.25);
    # b: N=300, 0 of 2 (p=0, s2 = 0). Estimate 0.25*0.75 = 0.1875.
    estimate = stratified_mean(
        [proportion_moments("a", 100, 3, 4), proportion_moments("b", 300, 0, 2)]
    )
    assert estimate is not None and estimate.mean == pytest.approx(0.1875)
    assert estimate.se == pytest.approx(math.sqrt(0.0625 * 0.96 * 0.25 / 4))
    single = proportion_moments("c", 10, 1, 1)
    assert (single.mean, single.variance) == (1.0, None)  # one value: no spread to estimate
    assert proportion_moments("d", 10, 0, 0).mean is None


def quantiles(*strata: StratumDistribution, at: list[float]) -> list[Estimate]:
    found = stratified_quantiles(strata, at)
    assert found is not None
    return found


def test_hand_computed_quantiles_of_a_mixture() -> None:
    # a: N=100, uniform on [0, 10] (two percentiles: min and max); b: N=300, uniform on
    # [10, 20]. F(x) = 0.25 x/10 on [0, 10], 0.25 + 0.75 (x-10)/10 on [10, 20].
    a = StratumDistribution("a", 100, 50, [0.0, 10.0])
    b = StratumDistribution("b", 300, 50, [10.0, 20.0])
    found = quantiles(a, b, at=[0.0, 0.2, 0.25, 0.5, 1.0])
    assert [q.mean for q in found] == pytest.approx([0.0, 8.0, 10.0, 10 + 10 / 3, 20.0])
    # Woodruff at the median x = 13.33: F_a = 1, F_b = 1/3, so only b varies:
    # var F = 0.75^2 (1 - 50/300) (1/3)(2/3) / 49; the interval 0.5 -+ z se maps back
    # through b's slope (0.075 per unit), so se(x) = se(F) / 0.075.
    se_f = math.sqrt(0.5625 * (250 / 300) * (2 / 9) / 49)
    assert found[3].se == pytest.approx(se_f / 0.075)
    assert found[3].population == 400


def test_quantiles_with_ties_jump_and_strata_without_values_drop_out() -> None:
    # a: N=100, every value 5 (a jump of 0.5 at 5); b: N=100, uniform on [0, 10].
    # F(x) = 0.05 x below 5, 0.75 + 0.05 (x - 5) from 5 on.
    a = StratumDistribution("a", 100, 10, [5.0, 5.0, 5.0])
    b = StratumDistribution("b", 100, 10, [0.0, 5.0, 10.0])
    found = quantiles(a, b, at=[0.1, 0.25, 0.5, 0.75, 0.9])
    assert [q.mean for q in found] == pytest.approx([2.0, 5.0, 5.0, 5.0, 8.0])
    empty = StratumDistribution("c", 50, 0, [])
    alone = quantiles(b, empty, at=[0.5])[0]
    assert alone.mean == 5.0 and "1 strata" in alone.note
    assert stratified_quantiles([empty], [0.5]) is None
    census = quantiles(StratumDistribution("d", 3, 3, [1.0, 2.0, 3.0]), at=[0.5])[0]
    assert (census.mean, census.se) == (2.0, 0.0)  # a census: no sampling error
