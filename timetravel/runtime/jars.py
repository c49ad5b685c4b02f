"""The Delta and S3A jars: resolved once from Maven Central, cached in the project.

``fetch_jars`` runs Maven on the packaged ``_jars/pom.xml`` with a project-local
repository (``.cache/m2``), keeps only the jars pyspark does not already ship, and writes
a manifest. Later calls find the manifest and touch no network. The manifest is keyed by
the pom's hash and the pyspark version, so upgrading either re-resolves.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from timetravel.errors import SetupError
from timetravel.locks import exclusive_lock

__all__ = ["fetch_jars", "cached_jars", "spark_submit_args"]

MANIFEST = "manifest.json"
_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


def _pom_text() -> str:
    return (Path(__file__).parent / "_jars" / "pom.xml").read_text()


def _pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def _cache_key() -> str:
    import pyspark

    digest = hashlib.sha256(_pom_text().encode()).hexdigest()[:16]
    return f"{digest}-pyspark{pyspark.__version__}"


def _artifact_name(jar: str) -> str:
    """'hadoop-client-api-3.4.2.jar' -> 'hadoop-client-api'."""
    return _VERSION_SUFFIX.sub("", jar)


def cached_jars(jars_dir: str | Path) -> list[Path] | None:
    """The cached jar paths if the cache is complete and current, else None."""
    directory = Path(jars_dir)
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text())
    if data.get("key") != _cache_key():
        return None
    jars = [directory / name for name in data["jars"]]
    return jars if all(j.is_file() for j in jars) else None


def fetch_jars(
    jars_dir: str | Path, *, maven_repo: str | Path | None = None, quiet: bool = False
) -> list[Path]:
    """Resolve the jars into ``jars_dir`` unless already cached; return their paths.

    A fetch into the same folder already running in another process is waited for, not
    repeated (two Maven runs would write over each other's jars).
    """
    directory = Path(jars_dir).resolve()
    existing = cached_jars(directory)
    if existing is not None:
        return existing
    with _one_fetch_at_a_time(directory):
        # Another fetch (a job started beside this one on a fresh machine) may have just
        # finished: its jars are ours.
        existing = cached_jars(directory)
        if existing is not None:
            return existing
        return _fetch(directory, maven_repo=maven_repo, quiet=quiet)


def _one_fetch_at_a_time(directory: Path) -> AbstractContextManager[None]:
    """Hold an exclusive lock on a file beside the jars folder (``.cache/.jars.lock`` for
    ``.cache/jars``)."""
    return exclusive_lock(directory.parent / f".{directory.name}.lock")


def _fetch(directory: Path, *, maven_repo: str | Path | None, quiet: bool) -> list[Path]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SetupError(
            "Maven ('mvn') is needed once to fetch the Delta and S3A jars and was "
            "not found on PATH; install it (apt-get install maven) and run "
            "`timetravel setup-jars` again"
        )
    repo = Path(maven_repo).resolve() if maven_repo else directory.parent / "m2"
    if not quiet:
        print(
            f"timetravel: resolving Delta + S3A jars from Maven Central into {directory} "
            "(first run only)...",
            file=sys.stderr,
            flush=True,
        )
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_pom_text())
        staging = Path(tmp) / "jars"
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            f"-Dmaven.repo.local={repo}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise SetupError(
                f"Maven could not resolve the jars (exit {done.returncode}); "
                f"is Maven Central reachable?\n{tail}"
            )
        provided = {_artifact_name(j.name) for j in _pyspark_jars_dir().glob("*.jar")}
        keep = sorted(
            j.name for j in staging.glob("*.jar") if _artifact_name(j.name) not in provided
        )
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.jar"):
            old.unlink()
        for name in keep:
            shutil.copy2(staging / name, directory / name)
    (directory / MANIFEST).write_text(json.dumps({"key": _cache_key(), "jars": keep}, indent=1))
    if not quiet:
        print(f"timetravel: cached {len(keep)} jars in {directory}", file=sys.stderr, flush=True)
    return [directory / name for name in keep]


def spark_submit_args(jars_dir: str | Path) -> list[str]:
    """``--jars a,b,...`` for spark-submit, fetching the jars first if needed."""
    return ["--jars", ",".join(str(p) for p in fetch_jars(jars_dir, quiet=True))]
