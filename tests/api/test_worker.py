"""A job's worker runs the embedded join within the job's memory (no Spark, no server)."""

from __future__ import annotations

from pathlib import Path

from timetravel.api.worker import job_config
from timetravel.config import load_config_dict


def _config(**query: object) -> dict[str, object]:
    return {
        "warehouse": {"root": "/tmp/wh"},
        "api": {"job_memory_mb": 1024},
        "query": query,
    }


def test_duckdb_gets_at_most_half_the_job_memory_and_spills_under_the_state_dir(
    tmp_path: Path,
) -> None:
    config = job_config(load_config_dict(_config()), str(tmp_path))
    assert config.query.embedded_memory_mb == 512  # default 2000, job 1024
    assert config.query.spill_directory == str(tmp_path / "spill")
    assert (tmp_path / "spill").is_dir()


def test_a_smaller_configured_limit_and_spill_directory_are_kept(tmp_path: Path) -> None:
    spill = tmp_path / "fast-disk"
    raw = _config(embedded_memory_mb=300, spill_directory=str(spill))
    config = job_config(load_config_dict(raw), str(tmp_path / "state"))
    assert config.query.embedded_memory_mb == 300
    assert config.query.spill_directory == str(spill)
