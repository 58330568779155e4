"""Hostile input files and arguments for the `rerank` command, run as a real subprocess against a loopback emulator.

Every malformed line is one line on stderr naming the file and the line, exit code 2, and no traceback; what is
well-formed but unusual (a CSV cell larger than the csv module's default limit, integer ids) works.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.helpers import run
from tests.support.emulator import ProviderEmulator
from tests.support.fixtures import StartEmulator


@pytest.fixture
def emu(start_emulator: StartEmulator) -> ProviderEmulator:
    return start_emulator("generic")


def provider(emu: ProviderEmulator) -> list[str]:
    return ["--provider", "generic:m", "--base-url", emu.base_url]


def user_error(done: subprocess.CompletedProcess[str], *messages: str) -> None:
    assert done.returncode == 2, done.stderr
    stderr = done.stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("rerank: error: ")
    assert len(stderr.strip().splitlines()) == 1, stderr
    for message in messages:
        assert message in stderr, stderr


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("name", "content", "messages"),
    [
        (
            "deep.jsonl",
            '{"text": "ok"}\n{"text": "x", "metadata": {"v": ' + nested(100_000) + "}}\n",
            ["deep.jsonl:2: JSON nested deeper than 64 levels"],
        ),
        (
            "deep65.jsonl",
            '{"text": "ok"}\n\n{"text": "x", "metadata": {"v": ' + nested(63) + "}}\n",
            ["deep65.jsonl:3: JSON nested deeper than 64 levels"],
        ),
        ("deep.json", "[" + nested(5000) + "]", ["deep.json: JSON nested deeper than 65 levels"]),
        ("digits.jsonl", '{"text": "x", "id": ' + "9" * 5000 + "}\n", ["digits.jsonl:1: not valid JSON", "digits"]),
        ("surrogate.jsonl", '{"text": "ok"}\n{"text": "bad \\ud800"}\n', ["surrogate.jsonl:2:", "unpaired surrogate"]),
        (
            "meta.jsonl",
            '{"text": "ok", "metadata": [1]}\n',
            ["meta.jsonl:1:", "['metadata'] must be a mapping (dict), not list"],
        ),
        ("cr.csv", "text,id\nok,1\na\rb,2\n", ["cr.csv:3: not valid CSV", "new-line character"]),
    ],
)
def test_malformed_documents_are_one_line_with_the_line_number(
    emu: ProviderEmulator, tmp_path: Path, name: str, content: str, messages: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode())
    user_error(run("capital", str(path), *provider(emu), RERANK_API_KEY="k"), *messages)
    assert emu.request_count == 0


def test_a_csv_cell_larger_than_the_csv_default_is_read(emu: ProviderEmulator, tmp_path: Path) -> None:
    big = "capital " + "x" * 300_000  # the csv module refuses cells over 131,072 characters by default
    path = tmp_path / "big.csv"
    path.write_text(f'id,text\n1,"{big}"\n2,berlin\n', encoding="utf-8")
    done = run("capital", str(path), *provider(emu), "--format", "json", RERANK_API_KEY="k")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]
    assert [row["id"] for row in rows] == ["1", "2"]  # CSV has no types: its ids are strings
    assert len(rows[0]["text"]) == len(big)


@pytest.mark.parametrize("query", ["\u200b", "\u200b\u200d\ufeff", "   "])
def test_a_query_of_invisible_characters_exits_2(emu: ProviderEmulator, tmp_path: Path, query: str) -> None:
    docs = tmp_path / "d.txt"
    docs.write_text("paris\nberlin\n")
    user_error(run(query, str(docs), *provider(emu), RERANK_API_KEY="k"), "query is empty or blank")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    user_error(run(query, str(empty), *provider(emu), RERANK_API_KEY="k"), "query is empty or blank")
    assert emu.request_count == 0


def test_queries_file_errors_name_the_line(emu: ProviderEmulator, tmp_path: Path) -> None:
    docs = tmp_path / "d.txt"
    docs.write_text("paris\nberlin\n")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "capital"}\n{"query": "\\u200b"}\n')
    user_error(run("--queries", str(queries), str(docs), *provider(emu), RERANK_API_KEY="k"), "q.jsonl:2:", "blank")
    queries.write_text('{"query": "capital"}\n{"query": "x", "documents": [' + nested(200) + "]}\n")
    user_error(run("--queries", str(queries), str(docs), *provider(emu), RERANK_API_KEY="k"), "q.jsonl:2:", "nested")
    assert emu.request_count == 0


def test_integer_ids_stay_integers_in_every_output(emu: ProviderEmulator, tmp_path: Path) -> None:
    docs = tmp_path / "d.jsonl"
    docs.write_text('{"id": 0, "text": "paris capital"}\n{"id": 17, "text": "berlin"}\n{"id": "17", "text": "x"}\n')
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": 5, "query": "capital"}\n')
    single = run("capital", str(docs), *provider(emu), "--format", "json", RERANK_API_KEY="k")
    lines = run("capital", str(docs), *provider(emu), "--format", "jsonl", RERANK_API_KEY="k")
    many = run("--queries", str(queries), str(docs), *provider(emu), "--format", "jsonl", RERANK_API_KEY="k")
    table = run("capital", str(docs), *provider(emu), RERANK_API_KEY="k")
    assert single.returncode == lines.returncode == many.returncode == table.returncode == 0, single.stderr
    assert {row["index"]: row["id"] for row in json.loads(single.stdout)["results"]} == {0: 0, 1: 17, 2: "17"}
    assert [json.loads(line)["id"] for line in lines.stdout.splitlines()] == [0, 17, "17"]
    assert {json.loads(line)["query_id"] for line in many.stdout.splitlines()} == {5}
    first_row = table.stdout.splitlines()[1].split()
    assert first_row[2:4] == ["0", "0"]  # index 0, id 0: an id of 0 is shown
