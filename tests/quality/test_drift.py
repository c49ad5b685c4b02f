"""Drift measures computed by hand (no Spark)."""

from __future__ import annotations

import math

import pytest

from timetravel.quality.drift import FLOOR, decile_bin, js_distance, psi


def test_psi_by_hand() -> None:
    assert psi([10, 10], [10, 10]) == 0.0
    # shares 0.5/0.5 -> 0.8/0.2: (0.3) ln(1.6) + (-0.3) ln(0.4)
    assert psi([50, 50], [80, 20]) == pytest.approx(0.3 * math.log(1.6) - 0.3 * math.log(0.4))
    # An empty bin is floored, not infinite.
    assert psi([100, 0], [50, 50]) == pytest.approx(
        (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - FLOOR) * math.log(0.5 / FLOOR)
    )
    with pytest.raises(ValueError, match="same, non-empty"):
        psi([1, 2], [1])


def test_js_distance_by_hand() -> None:
    assert js_distance({"a": 3, "b": 1}, {"a": 6, "b": 2}) == 0.0  # same shares
    assert js_distance({"a": 1}, {"b": 1}) == pytest.approx(1.0)  # disjoint: the maximum
    # p = (0.5, 0.5), q = (1, 0): m = (0.75, 0.25);
    # KL(p||m) = 0.5 log2(0.5/0.75) + 0.5 log2(0.5/0.25); KL(q||m) = log2(1/0.75)
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2)
    kl_q = math.log2(1 / 0.75)
    assert js_distance({"a": 1, "b": 1}, {"a": 2}) == pytest.approx(math.sqrt((kl_p + kl_q) / 2))
    assert js_distance({}, {}) == 0.0


def test_bins_count_edges_at_or_below() -> None:
    edges = [1.0, 2.0, 3.0]
    assert [decile_bin(v, edges) for v in (0.5, 1.0, 2.5, 3.0, 9.0)] == [0, 1, 2, 3, 3]
