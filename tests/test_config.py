from pathlib import Path

import pytest

from timetravel.config import Config, load_config, load_config_dict
from timetravel.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("profile", ["local", "s3", "test"])
def test_shipped_profiles_are_valid(profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMETRAVEL_S3_ENDPOINT", raising=False)
    config = load_config(ROOT / "conf" / f"{profile}.yaml")
    assert config.profile == profile


def test_local_profile_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TIMETRAVEL_CONF", raising=False)
    config = load_config()
    assert config.profile == "local"
    assert config.spark.master == "local[*]"
    assert config.warehouse.root == str(ROOT / "warehouse")
    assert config.s3 is None


def test_env_var_selects_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "profile: custom\nwarehouse: {root: /data/wh}\n")
    monkeypatch.setenv("TIMETRAVEL_CONF", str(path))
    assert load_config().profile == "custom"


def test_explicit_path_beats_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMETRAVEL_CONF", str(write(tmp_path, "profile: from-env\n")))
    other = tmp_path / "other.yaml"
    other.write_text("profile: from-flag\n")
    assert load_config(other).profile == "from-flag"


def test_s3_profile_reads_endpoint_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMETRAVEL_S3_ENDPOINT", "http://127.0.0.1:4566")
    config = load_config(ROOT / "conf" / "s3.yaml")
    assert config.s3 is not None and config.s3.endpoint == "http://127.0.0.1:4566"
    assert config.warehouse.is_s3


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml \(from --conf\)"):
        load_config(tmp_path / "nope.yaml")


def test_missing_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMETRAVEL_CONF", str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"gone\.yaml \(from \$TIMETRAVEL_CONF\)"):
        load_config()


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "spark:\n  masterr: local[1]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "spark.masterr: unknown key" in str(err.value)
    assert str(path) in str(err.value)


def test_bad_type_names_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "spark:\n  shuffle_partitions: lots\n"))
    assert "spark.shuffle_partitions" in str(err.value)
    assert "'lots'" in str(err.value)


def test_out_of_range_value(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"spark\.shuffle_partitions: .*greater than or equal to 1"
    ):
        load_config(write(tmp_path, "spark:\n  shuffle_partitions: 0\n"))


def test_unknown_spark_join_plan_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "query:\n  spark_join_plan: fastest\n"))
    message = str(err.value)
    assert "query.spark_join_plan" in message and "'fastest'" in message
    assert "'auto', 'sweep' or 'band'" in message


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("s3://bucket/wh", "use the s3a:// scheme"),
        ("ftp://host/wh", "unsupported scheme 'ftp'"),
        ("s3a:///no-bucket", "s3a URI needs a bucket"),
    ],
)
def test_bad_warehouse_uri(root: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config_dict({"warehouse": {"root": root}, "s3": {}})
    assert "warehouse.root" in str(err.value)
    assert expected in str(err.value)


def test_bad_endpoint_uri() -> None:
    with pytest.raises(ConfigError, match=r"s3\.endpoint: .*expected an http:// or https:// URL"):
        load_config_dict({"s3": {"endpoint": "127.0.0.1:9000"}})


def test_s3_warehouse_needs_s3_section() -> None:
    with pytest.raises(ConfigError, match="there is no 's3' section"):
        load_config_dict({"warehouse": {"root": "s3a://bucket/wh"}})


@pytest.mark.parametrize("key", ["access_key", "aws_secret_access_key", "secret_key"])
def test_credentials_in_yaml_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"s3\.{key}: credentials must not be stored"):
        load_config_dict({"s3": {"endpoint": "http://127.0.0.1:9000", key: "xyz"}})


def test_unset_env_var_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TT_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match=r"warehouse\.root: environment variable TT_NOT_SET"):
        load_config_dict({"warehouse": {"root": "${TT_NOT_SET}"}})


def test_env_default_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TT_NOT_SET", raising=False)
    assert load_config_dict({"warehouse": {"root": "${TT_NOT_SET:-/x/y}"}}).warehouse.root == "/x/y"


def test_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "spark: [unclosed\n"))


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_spark_conf_keys_must_be_spark_keys() -> None:
    with pytest.raises(ConfigError, match=r"spark\.conf: .*must start with 'spark\.'; got fs\.x"):
        load_config_dict({"spark": {"conf": {"fs.x": "1"}}})


def test_bad_retention_interval() -> None:
    with pytest.raises(ConfigError, match=r"tables\.deleted_file_retention: .*interval N days"):
        load_config_dict({"tables": {"deleted_file_retention": "10 years"}})


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(Exception, match="frozen"):
        config.profile = "other"  # type: ignore[misc]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_config_dict({"nope": 1})
