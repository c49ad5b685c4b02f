"""A Spark standalone master and one worker on loopback, in their own processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from timetravel.demo.fleet import free_port


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class StandaloneCluster:
    """``with StandaloneCluster(tmp) as cluster: cluster.master_url`` -> spark://127.0.0.1:P."""

    def __init__(self, work_dir: Path, *, cores: int = 2, memory: str = "2g") -> None:
        self.work_dir = work_dir
        self.port = free_port()
        self.master_url = f"spark://127.0.0.1:{self.port}"
        self.cores, self.memory = cores, memory
        self._procs: list[subprocess.Popen[bytes]] = []

    def _start(self, *args: str, log: str) -> None:
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}
        out = open(self.work_dir / log, "wb")
        self._procs.append(
            subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def __enter__(self) -> StandaloneCluster:
        self._start(
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--webui-port",
            str(free_port()),
            log="master.log",
        )
        self._wait_port(self.port)
        self._start(
            "org.apache.spark.deploy.worker.Worker",
            self.master_url,
            "--host",
            "127.0.0.1",
            "--cores",
            str(self.cores),
            "--memory",
            self.memory,
            "--webui-port",
            str(free_port()),
            "--work-dir",
            str(self.work_dir / "work"),
            log="worker.log",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "Successfully registered with master" in (self.work_dir / "worker.log").read_text(
                errors="replace"
            ):
                return self
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("the Spark worker did not register with the master in 60 s")

    def _wait_port(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the Spark master did not listen on {port} in 60 s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
