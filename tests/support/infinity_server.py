"""A real Infinity server (`infinity-emb` from PyPI) run as a subprocess on 127.0.0.1 for the integration tests.

Infinity's pins (numpy 1.26, transformers 4.57) clash with the project's venv, so it lives in its own venv, which
`scripts/check.sh` creates as `.venv-infinity`. `RERANK_INFINITY_EMB` may name another `infinity_emb` executable.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLE_ENV = "RERANK_INFINITY_EMB"
DEFAULT_EXECUTABLE = ROOT / ".venv-infinity" / "bin" / "infinity_emb"
STARTUP_TIMEOUT = 600.0  # ~20 s on an idle machine, 70-90 s measured on a busy 2-core one


def executable() -> Path:
    return Path(os.environ.get(EXECUTABLE_ENV) or DEFAULT_EXECUTABLE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class InfinityServer:
    """`infinity_emb v2` serving `model_dir` under each of `names`; started by `start()`, stopped by `stop()`."""

    def __init__(
        self, model_dir: str, names: Sequence[str], *, log: Path, api_key: str | None = None, max_batch: int = 2048
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.command = [str(executable()), "v2"]
        for name in names:  # one engine per served name: a multi-model server checks the request's model
            self.command += ["--model-id", model_dir, "--served-model-name", name]
        self.command += ["--engine", "torch", "--device", "cpu", "--host", "127.0.0.1", "--port", str(self.port)]
        self.command += ["--no-model-warmup"] + (["--api-key", api_key] if api_key else [])
        self.env = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            DO_NOT_TRACK="1",
            INFINITY_ANONYMOUS_USAGE_STATS="0",
            OMP_NUM_THREADS="1",
            INFINITY_MAX_CLIENT_BATCH_SIZE=str(max_batch),
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> InfinityServer:
        return self.launch().wait_until_healthy()

    def launch(self) -> InfinityServer:
        """Start the process without waiting for it: several servers can then load their models side by side."""
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=sink, stderr=subprocess.STDOUT)
        return self

    def wait_until_healthy(self) -> InfinityServer:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._healthy():
                return self
            try:  # waits on the process: returns at once if the server dies during startup
                self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"infinity_emb exited with {self.process.returncode}:\n{self.tail()}")
        self.stop()
        raise RuntimeError(f"infinity_emb not healthy after {STARTUP_TIMEOUT:g} s:\n{self.tail()}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """End the server at once, as a crash would: no graceful shutdown that lets queued requests finish."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
