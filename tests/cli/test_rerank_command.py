"""The `rerank` CLI, run as a real subprocess on real files against loopback emulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rerank_core import load_reranker
from tests.composition.helpers import closed_port_url
from tests.support.emulator import ProviderEmulator
from tests.support.fixtures import StartEmulator

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DOCS = REPO / "examples" / "docs.jsonl"
DOCS = ["berlin is in germany", "paris is the capital of france", "the capital city", "bread and water"]


def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RERANK_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "rerank_core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


@pytest.fixture
def emu(start_emulator: StartEmulator) -> ProviderEmulator:
    return start_emulator("generic")


@pytest.fixture
def docs_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"id": f"d{i}", "text": t, "lang": "en"}) for i, t in enumerate(DOCS)) + "\n")
    return path


def provider_args(emu: ProviderEmulator) -> list[str]:
    return ["--provider", "generic:m", "--base-url", emu.base_url]


def test_json_output_matches_the_core_ranking(emu: ProviderEmulator, docs_jsonl: Path) -> None:
    done = run(
        "capital of france",
        str(docs_jsonl),
        *provider_args(emu),
        "--format",
        "json",
        "--top-n",
        "2",
        RERANK_API_KEY="k",
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    core = load_reranker("generic:m", base_url=emu.base_url, api_key="k").rerank("capital of france", DOCS, top_n=2)
    assert [row["index"] for row in payload["results"]] == [r.index for r in core.results]
    assert [row["score"] for row in payload["results"]] == [r.relevance_score for r in core.results]
    assert payload["results"][0] == {
        "rank": 1,
        "index": 1,
        "score": core.results[0].relevance_score,
        "id": "d1",
        "text": DOCS[1],
        "metadata": {"lang": "en"},
    }
    assert (payload["provider"], payload["model"], payload["passthrough"]) == ("generic", "m", False)


def test_table_output_txt_csv_and_stdin_agree(emu: ProviderEmulator, tmp_path: Path) -> None:
    txt = tmp_path / "docs.txt"
    txt.write_text("\n".join(DOCS) + "\n\n")
    csv_file = tmp_path / "docs.csv"
    csv_file.write_text("id,text,source\n" + "".join(f'c{i},"{t}",web\n' for i, t in enumerate(DOCS)))

    outputs = [
        run("capital of france", str(txt), *provider_args(emu), "--format", "jsonl", RERANK_API_KEY="k"),
        run("capital of france", str(csv_file), *provider_args(emu), "--format", "jsonl", RERANK_API_KEY="k"),
        run(
            "capital of france",
            "-",
            *provider_args(emu),
            "--format",
            "jsonl",
            stdin="\n".join(DOCS),
            RERANK_API_KEY="k",
        ),
    ]
    assert all(done.returncode == 0 for done in outputs), [done.stderr for done in outputs]
    rankings = [[json.loads(line)["text"] for line in done.stdout.splitlines()] for done in outputs]
    assert rankings[0] == rankings[1] == rankings[2]
    assert rankings[0][0] == DOCS[1]
    assert len(rankings[0]) == len(DOCS)
    assert json.loads(outputs[1].stdout.splitlines()[0])["id"] == "c1"

    table = run("capital of france", str(txt), *provider_args(emu), RERANK_API_KEY="k")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "index", "id", "text"]
    assert lines[1].split()[:3] == ["1", "0.9900", "1"]
    assert lines[1].endswith(DOCS[1])
    assert lines[-1].startswith("-- generic:m, 4 documents")


def test_many_queries_with_bounded_concurrency_and_progress(
    emu: ProviderEmulator, docs_jsonl: Path, tmp_path: Path
) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        "\n".join(
            [
                json.dumps({"id": "q1", "query": "capital of france"}),
                json.dumps("bread and water"),
                json.dumps({"id": "q3", "query": "germany", "documents": ["berlin germany", "rome"]}),
            ]
        )
    )
    done = run(
        "--queries", str(queries), str(docs_jsonl), *provider_args(emu),
        "--format", "jsonl", "--top-n", "1", "--concurrency", "2", "--progress",
        RERANK_API_KEY="k",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["query_id"], row["text"]) for row in rows] == [
        ("q1", DOCS[1]),
        (None, "bread and water"),
        ("q3", "berlin germany"),
    ]
    assert "3/3 queries" in done.stderr
    assert emu.request_count == 3


@pytest.mark.slow
def test_default_is_the_local_cross_encoder_on_the_example_file(tiny_cross_encoder: str) -> None:
    rerank_script = Path(sys.executable).parent / "rerank"
    command = [str(rerank_script)] if rerank_script.exists() else [sys.executable, "-m", "rerank_core.cli"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RERANK_")}
    environ["RERANK_LOCAL_MODEL"] = tiny_cross_encoder
    done = subprocess.run(
        [*command, "what is the capital of france", str(EXAMPLE_DOCS), "--format", "json"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["provider"] == "local"
    assert payload["model"] == tiny_cross_encoder
    assert sorted(row["index"] for row in payload["results"]) == list(range(8))
    scores = [row["score"] for row in payload["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["q", "missing.jsonl"], {}, "file not found: missing.jsonl"),
        (["q", "bad.jsonl"], {"bad.jsonl": '{"text": "ok"}\n{not json\n'}, "bad.jsonl:2: not valid JSON"),
        (
            ["q", "nt.jsonl"],
            {"nt.jsonl": '{"body": "no text field"}\n'},
            'nt.jsonl:1: expected a JSON string or an object with a "text" field',
        ),
        (["q", "d.csv"], {"d.csv": "id,body\n1,x\n"}, 'needs a header row with a "text" column'),
        (["only-a-query"], {}, "expected a QUERY and a DOCS file"),
        (["q", "d.txt", "--top-n", "0"], {"d.txt": "a\n"}, "--top-n must be a positive number"),
        (["q", "d.txt", "--provider", "nope"], {"d.txt": "a\n"}, "unknown provider 'nope'"),
        (
            ["q", "d.txt", "--config", "c.toml"],
            {"d.txt": "a\n", "c.toml": "provider = 'generic'\ntiemout = 1\n"},
            "tiemout: unknown key",
        ),
    ],
)
def test_user_errors_exit_2_without_a_traceback(
    tmp_path: Path, args: list[str], files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "rerank_core.cli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RERANK_")},
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_key_names_the_variable(emu: ProviderEmulator, docs_jsonl: Path) -> None:
    done = run("q", str(docs_jsonl), *provider_args(emu))
    assert done.returncode == 2
    assert "RERANK_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_provider_down_exits_1_without_a_traceback(docs_jsonl: Path) -> None:
    done = run("q", str(docs_jsonl), "--provider", "generic:m", "--base-url", closed_port_url(), RERANK_API_KEY="k")
    assert done.returncode == 1
    assert done.stderr.startswith("rerank: failed: [generic]")
    assert "Traceback" not in done.stderr


def test_config_file_and_env_are_honoured(emu: ProviderEmulator, docs_jsonl: Path, tmp_path: Path) -> None:
    config = tmp_path / "rerank.yaml"
    config.write_text(f"provider: generic\nmodel: from-file\nbase_url: {emu.base_url}\napi_key_env: TEAM_KEY\n")
    by_flag = run("capital", str(docs_jsonl), "--config", str(config), "--format", "json", TEAM_KEY="secret")
    by_env = run("capital", str(docs_jsonl), "--format", "json", RERANK_CONFIG=str(config), TEAM_KEY="secret")
    assert by_flag.returncode == by_env.returncode == 0, by_flag.stderr + by_env.stderr
    assert json.loads(by_flag.stdout)["model"] == json.loads(by_env.stdout)["model"] == "from-file"
    assert all(request.headers["authorization"] == "Bearer secret" for request in emu.requests)


def test_normalize_maps_logits_into_probabilities(start_emulator: StartEmulator, docs_jsonl: Path) -> None:
    nim = start_emulator("nvidia")
    args = ["paris capital", str(docs_jsonl), "--provider", "nvidia:m", "--base-url", nim.base_url, "--format", "json"]

    raw = run(*args)
    normalized = run(*args, "--normalize", "sigmoid")

    assert raw.returncode == normalized.returncode == 0, raw.stderr + normalized.stderr
    raw_rows, prob_rows = json.loads(raw.stdout)["results"], json.loads(normalized.stdout)["results"]
    assert any(row["score"] < 0 or row["score"] > 1 for row in raw_rows), "the emulator should answer in logits"
    assert all(0 < row["score"] < 1 for row in prob_rows)
    assert [row["index"] for row in prob_rows] == [row["index"] for row in raw_rows]
