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


def test_bad_config_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
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
def test_demo_run_end_to_end(spark, local_config: Config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    demo = local_config.demo.model_copy(
        update={"members": 300, "state_dir": str(tmp_path / "fleet")}
    )
    conf = tmp_path / "demo.yaml"
    conf.write_text(yaml.safe_dump(local_config.model_copy(update={"demo": demo}).model_dump()))
    result = runner.invoke(app, ["--conf", str(conf), "demo", "run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "answers at T1 = 2026-06-01T00:00:00+00:00" in out
    assert "what changed between T1 and T2" in out
    assert "fleet stopped" in out
    assert "replaying the T1 export -> nothing committed" in out
    assert "population@2026-06-15T00:00:00+00:00" in out
    assert "pinned v1:" in out
    assert "run-20260601T060000Z:" in out and "(panel from run-20260608T060000Z)" in out
    assert "mean weight" in out
    assert "snapshot ok: ratings 100%, member-profile 100%" in out
    assert "select=ok, snapshot=ok" in out
    assert "(the schedule's quality stage)" in out and "population (95% CI)" in out
    assert "quality=ok" in out
    # The faulty run: each injected fault fails its check; the report is written.
    assert "== a faulty run at" in out and "quality failed" in out
    assert "FAIL  ratings.thumbs_up" in out and "drift_previous" in out
    assert "FAIL  member-profile.plan" in out and "null_rate" in out
    assert (tmp_path / "quality-report.html").exists() and "report: " in out
    assert "== training set: 'plays a comedy in the next 7 days'" in out
    assert "thumbs_up_share" in out and "cross-validated AUC, same model: as-of" in out
    assert "timetravel serve --insecure-local" in out
    assert "console: http://127.0.0.1:8000/ui" in out.splitlines()[-1]  # it ends with it
    assert not (tmp_path / "fleet" / "fleet.json").exists()


def test_demo_down_without_fleet_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "p.yaml"
    conf.write_text(f"demo: {{state_dir: {tmp_path / 'nofleet'}}}\n")
    monkeypatch.setattr("sys.argv", ["timetravel", "--conf", str(conf), "demo", "down"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "no demo fleet at" in capsys.readouterr().err


@pytest.mark.spark
def test_spark_commands_keep_the_jvm_out_of_the_terminal(
    local_config: Config, tmp_path: Path
) -> None:
    import subprocess
    import sys

    log_file = tmp_path / "logs" / "spark.log"
    spark = local_config.spark.model_copy(update={"log_file": str(log_file)})
    demo = local_config.demo.model_copy(update={"members": 50})
    conf = tmp_path / "quiet.yaml"
    conf.write_text(
        yaml.safe_dump(local_config.model_copy(update={"spark": spark, "demo": demo}).model_dump())
    )
    timetravel = Path(sys.executable).with_name("timetravel")
    args = [str(timetravel), "--conf", str(conf), "demo", "population"]
    done = subprocess.run(
        [*args, "--as-of", "2026-06-01T00:00:00Z"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "population version 1" in done.stdout  # created, then the export
    lines = done.stderr.splitlines()
    assert lines[0].startswith("starting Spark (local[2]; its log: ")
    assert lines[1].startswith("Spark ready in ") and len(lines) == 2, done.stderr
    assert "WARN" not in done.stdout + done.stderr
    # What the JVM said went to the log file instead: its own start-up warning included.
    assert "WARNING: Using incubator modules" in log_file.read_text()


def test_verbose_leaves_spark_on_its_default_log_profile(tmp_path: Path) -> None:
    from timetravel.runtime.spark import spark_settings

    conf = tmp_path / "p.yaml"
    conf.write_text("profile: mine\n")
    quiet = runner.invoke(app, ["--conf", str(conf), "config"])
    verbose = runner.invoke(app, ["--conf", str(conf), "--verbose", "config"])
    assert yaml.safe_load(quiet.output)["spark"]["log_file"] == ".cache/logs/spark.log"
    assert yaml.safe_load(verbose.output)["spark"]["log_file"] is None
    quiet_opts = spark_settings(Config(), with_jars=False)["spark.driver.extraJavaOptions"]
    assert "log4j2-file.properties" in quiet_opts and "-Dtimetravel.spark.log=" in quiet_opts
    plain = Config().model_copy(
        update={"spark": Config().spark.model_copy(update={"log_file": None})}
    )
    assert spark_settings(plain, with_jars=False)["spark.driver.extraJavaOptions"] == (
        "-Duser.timezone=UTC"
    )


def test_maintain_names_a_bad_retention_before_starting_spark(tmp_path: Path) -> None:
    conf = tmp_path / "p.yaml"
    conf.write_text("profile: mine\n")
    result = runner.invoke(app, ["--conf", str(conf), "maintain", "--vacuum-retain", "forever"])
    assert result.exit_code == 2 and "--vacuum-retain" in result.output
    assert "not a duration" in result.output and "starting Spark" not in result.output
    conf.write_text("maintenance: {vacuum_retain: thirty days}\n")
    bad = runner.invoke(app, ["--conf", str(conf), "maintain"])
    assert bad.exit_code != 0 and "maintenance.vacuum_retain" in str(bad.exception or bad.output)
