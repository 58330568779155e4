"""`rerank --instruction` and `rerank eval --instruction`: sent to an API that takes one, refused by one that
cannot follow it (exit 2, one line, nothing sent)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import run
from tests.support.fixtures import StartEmulator

TASK = "Given a question, find the answer"


def docs_file(tmp_path: Path) -> Path:
    path = tmp_path / "docs.txt"
    path.write_text("paris is the capital of france\nberlin is in germany\n")
    return path


def test_rerank_sends_the_instruction(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator("vllm")
    done = run(
        "capital of france", str(docs_file(tmp_path)), "--provider", "vllm:m", "--base-url", emu.base_url,
        "--instruction", TASK, "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [request.body["instruction"] for request in emu.requests] == [TASK]
    assert len(json.loads(done.stdout)["results"]) == 2


def test_rerank_refuses_it_where_it_cannot_be_followed(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator("generic")
    done = run(
        "capital of france", str(docs_file(tmp_path)), "--provider", "generic:m", "--base-url", emu.base_url,
        "--instruction", TASK, RERANK_API_KEY="k",
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot follow an instruction" in done.stderr
    assert "Traceback" not in done.stderr
    assert emu.requests == []


def beir(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    corpus = {"d1": "paris is the capital of france", "d2": "berlin is in germany"}
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in corpus.items()))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "capital of france"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    first = tmp_path / "first.trec"
    first.write_text("q1 Q0 d2 1 2 bm25\nq1 Q0 d1 2 1 bm25\n")
    return folder, first


def reranker_file(tmp_path: Path, provider: str, base_url: str) -> str:
    path = tmp_path / "system.toml"
    path.write_text(f'provider = "{provider}"\nmodel = "m"\nbase_url = "{base_url}"\napi_key_env = "EMU_KEY"\n')
    return str(path)


def test_eval_sends_the_instruction_with_every_query(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator("vllm")
    data, first = beir(tmp_path)
    done = run(
        "eval", str(data), "--run", str(first), "--reranker", reranker_file(tmp_path, "vllm", emu.base_url),
        "--instruction", TASK, EMU_KEY="k",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [request.body["instruction"] for request in emu.requests] == [TASK]


def test_eval_refuses_it_once_for_a_reranker_that_cannot_follow_it(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emu = start_emulator("generic")
    data, first = beir(tmp_path)
    done = run(
        "eval", str(data), "--run", str(first), "--reranker", reranker_file(tmp_path, "generic", emu.base_url),
        "--instruction", TASK, EMU_KEY="k",
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot follow an instruction" in done.stderr
    assert emu.requests == []
