from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from timetravel.cli import app, main
from timetravel.config import Config

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("setup-jars", "jars", "config", "demo"):
        assert command in result.output


def test_config_command_prints_validated_profile(tmp_path: Path) -> None:
    conf = tmp_path / "p.yaml"
    conf.write_text("profile: mine\nwarehouse: {root: /srv/wh}\n")
    result = runner.invoke(app, ["--conf", str(conf), "config"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output)["warehouse"]["root"] == "/srv/wh"


def test_bad_config_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "p.yaml"
    conf.write_text("spark: {shuffle_partitions: many}\n")
    monkeypatch.setattr("sys.argv", ["timetravel", "--conf", str(conf), "config"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("timetravel: error: invalid config")
    assert "spark.shuffle_partitions" in err and "Traceback" not in err


@pytest.mark.spark
def test_demo_run_prints_history_and_as_of_read(spark, local_config: Config,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    conf = tmp_path / "demo.yaml"
    conf.write_text(yaml.safe_dump(local_config.model_dump()))
    result = runner.invoke(app, ["--conf", str(conf), "demo", "run"])
    assert result.exit_code == 0, result.output
    assert "replayed it -> nothing committed" in result.output
    assert "history (newest first" in result.output
    assert "CREATE TABLE" in result.output
    assert "as of version 1: 2 rows of this tour; latest: 3 rows" in result.output
