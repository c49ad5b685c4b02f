"""Checks judged from measured values (no Spark): thresholds, built-ins, and bad checks named
when the profile is loaded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from timetravel.config import QualityCheck, QualitySettings, Threshold, load_config_dict
from timetravel.errors import ConfigError
from timetravel.quality.checks import SourceFacts, evaluate, worst

RUN_TIME = datetime(2026, 6, 1, 6, tzinfo=UTC)
FIELDS = {"thumbs_up": "int", "thumbs_down": "int"}


def facts(**overrides: object) -> dict[str, SourceFacts]:
    base = {
        "source": "ratings",
        "contexts": 100,
        "with_fact": 97,
        "rows": 97,
        "oldest_snapshot": RUN_TIME + timedelta(minutes=20),
        "fields": FIELDS,
        "outside": {},
    }
    return {"ratings": SourceFacts(**{**base, **overrides})}  # type: ignore[arg-type]


STATS = {("ratings", "thumbs_up"): (0.04, 0.0, 80.0), ("ratings", "thumbs_down"): (0.2, 0.0, 9.0)}


def verdicts(settings: QualitySettings, **overrides: object) -> dict[str, str]:
    results = evaluate(settings, facts(**overrides), STATS, RUN_TIME, {"ratings": FIELDS})
    return {f"{r.field or '*'}:{r.check}": r.status for r in results}


def test_thresholds_pass_warn_and_fail() -> None:
    settings = QualitySettings(
        checks=[
            QualityCheck(source="ratings", min_coverage=Threshold(warn=0.98, fail=0.9)),
            QualityCheck(
                source="ratings", field="thumbs_up", max_null_rate=Threshold(warn=0.05, fail=0.1)
            ),
            QualityCheck(
                source="ratings", field="thumbs_down", max_null_rate=Threshold(warn=0.05, fail=0.1)
            ),
            QualityCheck(source="ratings", field="thumbs_up", min_value=0, max_value=50),
            QualityCheck(source="ratings", max_staleness=Threshold(warn=600, fail=3600)),
        ]
    )
    assert verdicts(settings) == {
        "*:one_fact_per_context": "pass",
        "*:schema": "pass",
        "*:coverage": "warn",  # 0.97: under the warn line, over the fail line
        "thumbs_up:null_rate": "pass",  # 0.04
        "thumbs_down:null_rate": "fail",  # 0.2
        "thumbs_up:min_value": "pass",
        "thumbs_up:max_value": "fail",  # 80 > 50
        "*:staleness_s": "warn",  # 20 minutes: over 10, under 60
    }
    results = evaluate(settings, facts(), STATS, RUN_TIME, None)
    assert worst(results) == "fail"
    coverage = next(r for r in results if r.check == "coverage")
    assert (
        coverage.value == pytest.approx(0.97)
        and coverage.expected == "warn if < 0.98, fail if < 0.9"
    )


def test_built_ins_duplicates_schema_changes_and_allowed_values() -> None:
    settings = QualitySettings(
        checks=[QualityCheck(source="ratings", field="thumbs_up", allowed_values=["1", "2"])]
    )
    changed = {"thumbs_up": "bigint", "thumbs_sideways": "int"}
    found = verdicts(settings, rows=99, fields=changed, outside={"thumbs_up": 3})
    assert found == {
        "*:one_fact_per_context": "fail",  # 99 rows for 97 contexts with a fact
        "*:schema": "warn",  # the default: schema changes warn
        "thumbs_up:allowed_values": "fail",
    }
    results = evaluate(settings, facts(fields=changed), STATS, RUN_TIME, {"ratings": FIELDS})
    schema = next(r for r in results if r.check == "schema")
    assert schema.expected == "thumbs_down removed; thumbs_sideways added; thumbs_up int -> bigint"
    strict = QualitySettings(schema_changes="fail")
    assert verdicts(strict, fields=changed)["*:schema"] == "fail"
    # No previous run: nothing to compare with; and all passing is a pass.
    assert worst(evaluate(QualitySettings(), facts(), STATS, RUN_TIME, None)) == "pass"


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"source": "nope"}, "quality check on unknown source 'nope'"),
        ({"source": "ratings", "field": "stars"}, "unknown field 'stars' of source 'ratings'"),
        ({"source": "ratings", "max_null_rate": {"fail": 0.1}}, "max_null_rate need a field"),
        (
            {"source": "ratings", "field": "thumbs_up", "max_null_rate": {"fail": "lots"}},
            "quality.checks.0.max_null_rate.fail",
        ),
    ],
)
def test_bad_checks_are_named_when_the_profile_loads(
    check: dict[str, object], message: str
) -> None:
    profile = {
        "snapshot": {
            "sources": [
                {"name": "ratings", "get_path": "/r/{member_id}", "schema": "thumbs_up int"}
            ]
        },
        "quality": {"checks": [check]},
    }
    with pytest.raises(ConfigError, match=message):
        load_config_dict(profile)
