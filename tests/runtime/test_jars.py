import json
from pathlib import Path

import pytest

from timetravel.config import Config
from timetravel.runtime.jars import _artifact_name, _pyspark_jars_dir, cached_jars, fetch_jars


@pytest.fixture(scope="module")
def jars_dir() -> Path:
    directory = Path(Config().spark.jars_dir).resolve()
    fetch_jars(directory, quiet=True)
    return directory


def test_cache_has_delta_and_s3a(jars_dir: Path) -> None:
    names = {p.name for p in cached_jars(jars_dir) or []}
    assert any(n.startswith("delta-spark_4.2_2.13-") for n in names)
    assert any(n.startswith("hadoop-aws-3.5.0") for n in names)
    assert any(n.startswith("s3-2.35.4") for n in names)
    assert not any(n.startswith("bundle-") for n in names), "the 500 MB SDK bundle crept back"


def test_sparks_own_jars_win(jars_dir: Path) -> None:
    spark_names = {_artifact_name(p.name) for p in _pyspark_jars_dir().glob("*.jar")}
    cached = {_artifact_name(p.name) for p in cached_jars(jars_dir) or []}
    assert cached.isdisjoint(spark_names), cached & spark_names


def test_second_fetch_needs_no_maven(
    jars_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn, no network tool at all
    assert fetch_jars(jars_dir, quiet=True) == cached_jars(jars_dir)


def test_stale_manifest_is_not_trusted(jars_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "jars"
    copy.mkdir()
    manifest = json.loads((jars_dir / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "key": "old-pom"}))
    assert cached_jars(copy) is None


def test_fetches_side_by_side_run_maven_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes setting up at once on a fresh machine: the second waits for the first's
    jars instead of running Maven into the same folder."""
    import threading

    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "mvn"  # copies one jar where copy-dependencies is told to
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f"echo run >> {calls}\n"
        "sleep 1\n"
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#*=}";; esac; done\n'
        'mkdir -p "$out" && echo jar > "$out/fake-lib-1.0.jar"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    results: list[list[Path]] = []
    fetches = [
        threading.Thread(target=lambda: results.append(fetch_jars(tmp_path / "jars", quiet=True)))
        for _ in range(2)
    ]
    for fetch in fetches:
        fetch.start()
    for fetch in fetches:
        fetch.join()
    assert calls.read_text().splitlines() == ["run"]
    assert results == [[tmp_path / "jars" / "fake-lib-1.0.jar"]] * 2


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from timetravel.errors import SetupError

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SetupError, match=r"Maven \('mvn'\) is needed once"):
        fetch_jars(tmp_path / "empty", quiet=True)


@pytest.mark.parametrize(
    ("jar", "name"),
    [
        ("hadoop-client-api-3.4.2.jar", "hadoop-client-api"),
        ("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"),
        ("wildfly-openssl-2.2.5.Final.jar", "wildfly-openssl"),
    ],
)
def test_artifact_name(jar: str, name: str) -> None:
    assert _artifact_name(jar) == name
