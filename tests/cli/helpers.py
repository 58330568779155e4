"""Running the `rerank` command as a real subprocess, and watching its output while it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

COMMAND = [sys.executable, "-m", "rerank_core.cli"]


def environment(**env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RERANK_")}
    environ.update(env)
    return environ


def run(*args: str, stdin: str | None = None, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment(**env),
        cwd=cwd,
        timeout=300,
        check=False,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    """Wait for a condition another process or thread makes true (checked every 10 ms, up to `timeout`)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        pause.wait(0.01)


class Spawned:
    """A running `rerank`; its stdout and stderr are collected by threads so the test can wait on what it says."""

    def __init__(self, *args: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment(**env),
        )
        self._changed = threading.Condition()
        self.output = {"stdout": b"", "stderr": b""}
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=("stdout", self.process.stdout), daemon=True),
            threading.Thread(target=self._read, args=("stderr", self.process.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: IO[bytes]) -> None:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            with self._changed:
                self.output[name] += chunk
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, name: str, text: str, timeout: float = 120) -> None:
        """Block until `text` appears on stdout or stderr (fails if the process ends first)."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: text.encode() in self.output[name] or self.process.poll() is not None, timeout
            )
        assert found, f"{text!r} never appeared on {name}: {self.output}"
        assert text.encode() in self.output[name], f"the process ended before {text!r} on {name}: {self.output}"

    def interrupt(self) -> tuple[int, float]:
        """Send SIGINT; return the exit code and the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        elapsed = time.monotonic() - started
        for reader in self._readers:
            reader.join(timeout=10)
        return code, elapsed

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def stdout(self) -> str:
        return self.output["stdout"].decode()

    @property
    def stderr(self) -> str:
        return self.output["stderr"].decode()
