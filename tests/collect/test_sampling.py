"""Allocation arithmetic (pure Python) with hand-computed expectations."""

import pytest

from timetravel.collect.sampling import allocate
from timetravel.config import Allocation
from timetravel.errors import SelectionError


def sizes_of(result):  # type: ignore[no-untyped-def]
    return {k: p.sample for k, p in result.plans.items()}


def test_proportional_is_exact_and_sums_to_n() -> None:
    # quotas: 100*600/1000=60, 100*300/1000=30, 100*100/1000=10
    result = allocate({"a": 600, "b": 300, "c": 100}, Allocation(sample_size=100))
    assert sizes_of(result) == {"a": 60, "b": 30, "c": 10}


def test_largest_remainder_breaks_fractions_deterministically() -> None:
    # quotas 10*1/3 each = 3.33: floors 3,3,3 and one extra to the first key by name
    result = allocate({"x": 100, "y": 100, "z": 100}, Allocation(sample_size=10))
    assert sizes_of(result) == {"x": 4, "y": 3, "z": 3}
    # quotas 7 * (50, 30, 20)/100 = 3.5, 2.1, 1.4 -> floors 3,2,1 (6); +1 to 'a' (0.5)
    result = allocate({"a": 50, "b": 30, "c": 20}, Allocation(sample_size=7))
    assert sizes_of(result) == {"a": 4, "b": 2, "c": 1}


def test_equal_allocation_caps_small_strata() -> None:
    result = allocate({"big": 500, "small": 4}, Allocation(method="equal", sample_size=20))
    assert sizes_of(result) == {"big": 10, "small": 4}
    assert result.plans["small"].capped and not result.plans["big"].capped
    assert result.warnings == ["stratum 'small': target 10 exceeds its population 4; taking all 4"]


def test_minimum_per_stratum() -> None:
    # proportional: 1000*5/10005 = 0.4998 -> 0, raised to the minimum 3
    result = allocate({"a": 10_000, "b": 5}, Allocation(sample_size=1000, min_per_stratum=3))
    assert sizes_of(result) == {"a": 1000, "b": 3}


def test_explicit_targets_and_fractions() -> None:
    allocation = Allocation(
        method="explicit", targets={"a": 7}, fractions={"b": 0.25}, min_per_stratum=2
    )
    result = allocate({"a": 100, "b": 10, "c": 50}, allocation)
    # b: 0.25 * 10 = 2.5 -> rounds half up to 3; c unlisted -> the minimum 2
    assert sizes_of(result) == {"a": 7, "b": 3, "c": 2}


def test_explicit_target_larger_than_stratum_takes_all_and_warns() -> None:
    result = allocate({"a": 5}, Allocation(method="explicit", targets={"a": 9}))
    assert sizes_of(result) == {"a": 5}
    assert result.plans["a"].target == 9 and result.plans["a"].capped
    assert "target 9 exceeds its population 5; taking all 5" in result.warnings[0]


def test_named_empty_stratum_warns() -> None:
    result = allocate({"a": 5}, Allocation(method="explicit", targets={"a": 1, "ghost": 3}))
    assert result.warnings == [
        "stratum 'ghost' named in the allocation is empty in this "
        "population: nothing to sample there"
    ]


def test_empty_population_is_an_error() -> None:
    with pytest.raises(SelectionError, match="the population is empty"):
        allocate({}, Allocation(sample_size=10))


def test_probability_is_sample_over_population() -> None:
    plan = allocate({"a": 40}, Allocation(sample_size=10)).plans["a"]
    assert plan.probability == 0.25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "equal"}, "method 'equal' needs sample_size"),
        ({"method": "explicit"}, "needs targets or fractions"),
        ({"method": "explicit", "fractions": {"a": 1.5}}, "fractions must be in"),
    ],
)
def test_invalid_allocation(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        Allocation(**kwargs)
