"""Ctrl-C on a running `rerank`: it stops within a few seconds, exits 130 without a traceback, says what was
done and keeps every result it had written. Each test waits for the CLI to be mid-job before interrupting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Spawned, wait_until
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

EXIT_WITHIN = 5.0  # seconds; the job itself would take minutes


@pytest.fixture
def spawned() -> Iterator[list[Spawned]]:
    running: list[Spawned] = []
    yield running
    for process in running:
        process.kill()


def queries_file(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "query": f"capital {i}"}) + "\n" for i in range(count)))
    return path


def test_ctrl_c_during_an_http_wait_keeps_the_finished_queries(
    start_emulator: StartEmulator, tmp_path: Path, spawned: list[Spawned]
) -> None:
    emu = start_emulator("generic")
    emu.fail_next(Fault(), Fault(delay=120))  # the first query answers, the second hangs
    docs = tmp_path / "docs.txt"
    docs.write_text("paris is the capital\nbread\nrome\n")
    cli = Spawned(
        "--queries", str(queries_file(tmp_path / "q.jsonl", 5)), str(docs),
        "--provider", "generic:m", "--base-url", emu.base_url, "--timeout", "300",
        "--format", "jsonl", "--concurrency", "1", RERANK_API_KEY="k",
    )  # fmt: skip
    spawned.append(cli)
    cli.wait_for("stdout", '"query_id": "q0"')
    wait_until(lambda: emu.request_count == 2)  # the second request is in, and the emulator sits on it
    code, elapsed = cli.interrupt()

    assert code == 130
    assert elapsed < EXIT_WITHIN
    assert "Traceback" not in cli.stderr
    assert "interrupted: 1 of 5 queries written (0 failed)" in cli.stderr
    rows = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [row["query_id"] for row in rows] == ["q0"] * 3
    assert rows[0]["text"] == "paris is the capital"


@pytest.mark.slow
def test_ctrl_c_during_local_scoring_of_many_queries(
    tiny_cross_encoder: str, tmp_path: Path, spawned: list[Spawned]
) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(f"document {i} about the capital city of france and its river\n" for i in range(300)))
    cli = Spawned(
        "--queries", str(queries_file(tmp_path / "q.jsonl", 500)), str(docs),
        "--provider", f"local:{tiny_cross_encoder}", "--format", "jsonl", "--top-n", "2", "--concurrency", "2",
    )  # fmt: skip
    spawned.append(cli)
    cli.wait_for("stdout", '"query_id": "q1"')
    code, elapsed = cli.interrupt()

    assert code == 130
    assert elapsed < EXIT_WITHIN
    assert "Traceback" not in cli.stderr
    assert "terminate called" not in cli.stderr
    assert "queries written" in cli.stderr
    lines = cli.stdout.splitlines()
    rows = [json.loads(line) for line in lines]  # every line written is whole
    written = [f"q{i}" for i in range(len(rows) // 2)]
    assert [row["query_id"] for row in rows] == [q for q in written for _ in range(2)]
    assert f"interrupted: {len(written)} of 500 queries written" in cli.stderr


@pytest.mark.slow
def test_ctrl_c_during_one_large_local_query(tiny_cross_encoder: str, tmp_path: Path, spawned: list[Spawned]) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "".join(json.dumps({"id": i, "text": f"the river {i} flows to the sea"}) + "\n" for i in range(200_000))
    )
    cli = Spawned(
        "what flows to the sea", str(docs), "--provider", f"local:{tiny_cross_encoder}",
        "--batch-size", "256", "--progress",
    )  # fmt: skip
    spawned.append(cli)
    cli.wait_for("stderr", "] 256 documents")  # the first batch is scored
    code, elapsed = cli.interrupt()

    assert code == 130
    assert elapsed < EXIT_WITHIN
    assert "Traceback" not in cli.stderr
    assert "documents scored; no ranking written" in cli.stderr
    assert cli.stdout == ""
