"""Which Spark plan runs an as-of join: the band plan where keys have few snapshots, the sweep
plan everywhere else, chosen from a sample of the keys.

The band plan's work is its candidate pairs: per source, the sum over keys of label rows times
snapshot rows of that key. Divided by the label rows, that is the candidates per label: about
the snapshots per key when keys are spread evenly, far more when a few keys are hot (each of
a hot key's labels meets all its snapshots). Measured on the benchmark's medium uniform data
(``benchmarks/RESULTS.md``, 2026-12-01), the band plan against the sweep: 0.39x at 1
candidate per label, 0.70x at 9, 1.2x at 13, 1.3x at 18, 2.2x at 26; on zipf keys its hot
key makes it many times slower. So ``auto`` estimates the candidates per label of every
source from one Bernoulli sample of the keys (a fixed seed, sized from the inputs' estimated
bytes: about the same sample at every size) and takes the band plan when no source exceeds
``_BAND_MAX_CANDIDATES``.

Both plans give the same rows (the contract suite runs each), so the choice changes only the
time. Inputs estimated under ``_STATS_MIN_BYTES`` skip the sample and take the sweep: there
the sample's own job would cost more than either plan's difference.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from timetravel.asof.spark_rows import estimated_bytes, key_names, keyed

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["Plan", "PLANS", "PlanChoice", "candidates_per_label", "choose_plan"]

log = logging.getLogger(__name__)

Plan = Literal["auto", "sweep", "band"]
PLANS: tuple[Plan, ...] = ("auto", "sweep", "band")

_BAND_MAX_CANDIDATES = 10.0
# About this many input bytes' worth of rows are sampled (the medium benchmark: 1%).
_SAMPLE_BYTES = 2 * 1024 * 1024
_STATS_MIN_BYTES = 1024 * 1024
_SEED = 20261130


@dataclass(frozen=True)
class PlanChoice:
    """The plan ``auto`` chose, and from what: estimated candidates per label per source
    (None when no sample was taken) and the sampled fraction."""

    plan: Literal["sweep", "band"]
    candidates: dict[str, float] | None
    fraction: float | None


def choose_plan(
    labels: DataFrame,
    sources: Mapping[str, DataFrame],
    *,
    keys: Sequence[str],
) -> PlanChoice:
    """The band plan when every source's estimated candidates per label are at most
    ``_BAND_MAX_CANDIDATES``, else the sweep (also for small or unsized inputs)."""
    size = estimated_bytes([labels, *sources.values()])
    if size is None or size < _STATS_MIN_BYTES:
        choice = PlanChoice("sweep", None, None)
    else:
        fraction = min(1.0, _SAMPLE_BYTES / size)
        candidates = candidates_per_label(labels, sources, keys=keys, fraction=fraction)
        few = all(c <= _BAND_MAX_CANDIDATES for c in candidates.values())
        choice = PlanChoice("band" if few else "sweep", candidates, fraction)
    log.info(
        "as-of join on Spark: %s plan (estimated candidates per label: %s, sampled fraction %s)",
        choice.plan,
        choice.candidates,
        choice.fraction,
    )
    return choice


def candidates_per_label(
    labels: DataFrame,
    sources: Mapping[str, DataFrame],
    *,
    keys: Sequence[str],
    fraction: float,
) -> dict[str, float]:
    """Per source, the band plan's estimated candidate pairs per label row, from a
    ``fraction`` sample of every input's keys (one scan; 1.0 counts exactly).

    A pair of sampled rows survives with probability ``fraction**2`` and a label row with
    ``fraction``, so pairs / labels is scaled by ``1 / fraction``. The sample (about
    ``_SAMPLE_BYTES`` of input: some 100k keys) is counted on the driver: one Spark stage,
    not two."""
    import numpy as np
    import pyarrow.compute as pc
    from pyspark.sql import functions as F

    names = list(sources)
    sides = [
        frame.select(*keyed(keys), F.lit(index).alias("_side"))
        for index, frame in enumerate([labels, *sources.values()])
    ]
    # Each side is sampled before the union, not the union after, so the sample runs in each
    # scan's own compiled stage; with the null-key filter moved to the sample (below), the
    # estimate took 0.55 s instead of 0.78 s at medium (medians, one process). Each side
    # draws with its own seeds: for a pair to survive with probability ``fraction**2``, no two
    # sides may draw the same rows. Spark seeds partition ``p`` with ``seed + p``, so the
    # sides' seeds lie 2**32 apart, beyond any partition count.
    if fraction < 1.0:
        sides = [
            side.sample(fraction=fraction, seed=_SEED + (index << 32))
            for index, side in enumerate(sides)
        ]
    keys_sample = sides[0]
    for side in sides[1:]:
        keys_sample = keys_sample.unionByName(side)
    sample = keys_sample.toArrow()
    # A null key matches nothing, so snapshot rows with one are dropped, here on the sample
    # rather than by a filter in every scan (0.1 s at medium). Rows with a null snapshot time
    # count (a little high, never low): reading one column less keeps the scan cheap.
    keys_known = [pc.is_valid(sample.column(k)) for k in key_names(len(keys))]
    is_label = pc.equal(sample.column("_side"), 0)
    sample = sample.filter(pc.or_(is_label, functools.reduce(pc.and_, keys_known)))
    side = sample.column("_side")
    for index in range(len(names) + 1):
        sample = sample.append_column(f"_n{index}", pc.cast(pc.equal(side, index), "int64"))
    per_key = sample.group_by(key_names(len(keys))).aggregate(
        [(f"_n{index}", "sum") for index in range(len(names) + 1)]
    )
    per_label = per_key.column("_n0_sum").to_numpy()
    sampled_labels = int(per_label.sum())
    if sampled_labels == 0:
        return dict.fromkeys(names, 0.0)
    return {
        name: float(np.dot(per_label, per_key.column(f"_n{index + 1}_sum").to_numpy()))
        / (fraction * sampled_labels)
        for index, name in enumerate(names)
    }
