"""The CLI on real jobs: streamed --queries with a failing query, --fail-fast, batched large inputs, and the
flags (--version, --score-threshold, --timeout, --max-retries, -v, --num-threads, JSON arrays, CSV with a BOM)."""

from __future__ import annotations

import argparse
import json
from importlib.metadata import version
from pathlib import Path

import pytest

from rerank_core import load_reranker
from rerank_core.cli.main import build_parser, reranker_config
from tests.cli.helpers import run
from tests.support.emulator import Fault, ProviderEmulator
from tests.support.fixtures import StartEmulator

DOCS = ["berlin is in germany", "paris is the capital of france", "the capital city", "bread and water"]


@pytest.fixture
def emu(start_emulator: StartEmulator) -> ProviderEmulator:
    return start_emulator("generic")


def generic(emu: ProviderEmulator) -> list[str]:
    return ["--provider", "generic:m", "--base-url", emu.base_url]


def write_queries(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "query": f"capital {i}"}) + "\n" for i in range(count)))
    return path


def test_one_failing_query_is_an_error_record_and_the_others_go_on(emu: ProviderEmulator, tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS))
    emu.fail_next(Fault(), Fault(), Fault(status=500))  # the third request (q2) fails; no retries
    done = run(
        "--queries", str(write_queries(tmp_path / "q.jsonl", 6)), str(docs), *generic(emu),
        "--format", "jsonl", "--top-n", "1", "--concurrency", "1", "--max-retries", "0", RERANK_API_KEY="k",
    )  # fmt: skip

    assert done.returncode == 1
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["query_id"] for row in rows] == [f"q{i}" for i in range(6)]
    assert rows[2]["error"]["type"] == "ProviderError"
    assert rows[2]["error"]["status_code"] == 500
    assert all("error" not in row and row["text"] == DOCS[1] for i, row in enumerate(rows) if i != 2)
    assert "rerank: query 'q2' failed: [generic]" in done.stderr
    assert "Traceback" not in done.stderr


def test_fail_fast_stops_at_the_first_failure_and_keeps_what_was_done(emu: ProviderEmulator, tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS))
    emu.fail_next(Fault(), Fault(status=500))
    done = run(
        "--queries", str(write_queries(tmp_path / "q.jsonl", 6)), str(docs), *generic(emu),
        "--format", "json", "--concurrency", "1", "--max-retries", "0", "--fail-fast", RERANK_API_KEY="k",
    )  # fmt: skip

    assert done.returncode == 1
    payload = json.loads(done.stdout)  # still one valid JSON array
    assert [item["query_id"] for item in payload] == ["q0", "q1"]
    assert "error" in payload[1]
    assert emu.request_count == 2
    assert "stopped at the first failure (--fail-fast)" in done.stderr


def test_many_queries_all_good_exit_0_in_input_order(emu: ProviderEmulator, tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS))
    done = run(
        "--queries", str(write_queries(tmp_path / "q.jsonl", 20)), str(docs), *generic(emu),
        "--format", "jsonl", "--top-n", "1", "--concurrency", "8", RERANK_API_KEY="k",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["query_id"] for line in done.stdout.splitlines()] == [f"q{i}" for i in range(20)]


def test_a_large_input_in_small_batches_ranks_like_one_call(emu: ProviderEmulator, tmp_path: Path) -> None:
    texts = [f"{word} capital {i}" for i, word in enumerate(["paris", "bread", "rome", "capital"] * 25)]
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    done = run(
        "capital of paris", str(docs), *generic(emu), "--batch-size", "7", "--top-n", "5", "--format", "json",
        "--progress", RERANK_API_KEY="k",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    core = load_reranker("generic:m", base_url=emu.base_url, api_key="k").rerank("capital of paris", texts, top_n=5)
    results = json.loads(done.stdout)["results"]
    assert [(row["index"], row["score"]) for row in results] == [(r.index, r.relevance_score) for r in core.results]
    assert [row["id"] for row in results] == [f"d{r.index}" for r in core.results]
    assert emu.request_count == 15 + 1  # ceil(100 / 7) batches, then the one call above
    assert "100 documents" in done.stderr  # the progress bar, over batches


def test_score_threshold_json_array_and_csv_with_a_bom(emu: ProviderEmulator, tmp_path: Path) -> None:
    array = tmp_path / "docs.json"
    array.write_text(json.dumps([{"id": f"d{i}", "text": t} for i, t in enumerate(DOCS)]))
    csv_file = tmp_path / "docs.csv"
    csv_file.write_bytes("\ufeffid,text\n".encode() + "".join(f"d{i},{t}\n" for i, t in enumerate(DOCS)).encode())

    outputs = [
        run("capital of france", str(path), *generic(emu), "--format", "jsonl", RERANK_API_KEY="k")
        for path in (array, csv_file)
    ]
    assert all(done.returncode == 0 for done in outputs), [done.stderr for done in outputs]
    first, second = ([json.loads(line) for line in done.stdout.splitlines()] for done in outputs)
    assert [(r["id"], r["score"]) for r in first] == [(r["id"], r["score"]) for r in second]
    assert first[0]["id"] == "d1"

    cut = first[1]["score"]
    kept = run("capital of france", str(array), *generic(emu), "--format", "jsonl", "--score-threshold", str(cut),
               RERANK_API_KEY="k")  # fmt: skip
    assert [json.loads(line)["id"] for line in kept.stdout.splitlines()] == [
        r["id"] for r in first if r["score"] >= cut
    ]
    assert len(kept.stdout.splitlines()) < len(DOCS)


def test_verbose_shows_retries_and_timeout_is_honoured(emu: ProviderEmulator, tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS))
    emu.fail_next(Fault(status=503))
    retried = run("capital", str(docs), *generic(emu), "-v", "--max-retries", "1", RERANK_API_KEY="k")
    assert retried.returncode == 0, retried.stderr
    assert "rerank: INFO: generic: retry 1 of 1" in retried.stderr

    emu.fail_next(Fault(delay=5))
    slow = run("capital", str(docs), *generic(emu), "--timeout", "0.3", "--max-retries", "0", RERANK_API_KEY="k")
    assert slow.returncode == 1
    assert "rerank: failed: [generic]" in slow.stderr
    assert "timed out" in slow.stderr.lower() or "timeout" in slow.stderr.lower()


def test_hints_name_cli_flags_not_python_arguments(tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("a\n")
    done = run("q", str(docs), "--provider", "cohere")
    assert done.returncode == 2
    assert "COHERE_API_KEY" in done.stderr
    assert "api_key=" not in done.stderr


def test_version_and_help_list_the_subcommands() -> None:
    shown = run("--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"rerank {version('rerank-core')}"
    helped = run("--help")
    assert "rerank eval" in helped.stdout
    assert "export-onnx" in helped.stdout


def parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_num_threads_reaches_the_local_reranker_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RERANK_PROVIDER", "RERANK_CONFIG", "RERANK_LOCAL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    config = reranker_config(parsed("q", "d.txt", "--provider", "local:./model", "--num-threads", "3"))
    assert (config.provider, config.model, config.options) == ("local", "./model", {"num_threads": 3})
    assert reranker_config(parsed("q", "d.txt", "--num-threads", "2")).options == {"num_threads": 2}


def test_num_threads_for_a_hosted_provider_is_a_user_error(tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("a\n")
    done = run("q", str(docs), "--provider", "cohere:rerank-v3.5", "--num-threads", "2", COHERE_API_KEY="k")
    assert done.returncode == 2
    assert "--num-threads applies to the local cross-encoder" in done.stderr
