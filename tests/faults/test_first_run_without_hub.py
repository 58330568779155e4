"""The first run on a machine that cannot reach the Hugging Face hub: one line, at once, with the cause and the
offline routes, from both engines, the three wrappers' warm_up(), the CLI, `rerank eval` and export-onnx; a model
already cached loads without the hub."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rerank_core import ConfigurationError, OnnxCrossEncoder, TorchCrossEncoder
from rerank_core.local import _hub

ROOT = Path(__file__).resolve().parents[2]
MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Online mode, an endpoint that refuses connections, and an empty cache; the probe's memory is cleared."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(_hub, "_probes", {})
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.pop("RERANK_LOCAL_MODEL", None)
    return env


@pytest.fixture(scope="module")
def tiny_onnx(tiny_cross_encoder: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.tiny_models import export_tiny_onnx

    return export_tiny_onnx(tiny_cross_encoder, tmp_path_factory.mktemp("hub-onnx"), int8=False)


def assert_names_the_routes(message: str, model: str) -> None:
    assert model in message
    assert "cannot be reached" in message
    for route in ("RERANK_LOCAL_MODEL", "local:<folder>", "HF_HUB_OFFLINE=1"):
        assert route in message, route


@pytest.mark.parametrize("engine", [TorchCrossEncoder, OnnxCrossEncoder])
def test_both_engines_say_the_hub_cannot_be_reached(
    engine: type[TorchCrossEncoder | OnnxCrossEncoder], unreachable_hub: dict[str, str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        engine(MODEL).warm_up()
    assert_names_the_routes(str(caught.value), MODEL)
    assert "tokenizer.json" not in str(caught.value), "the cause is the network, not a missing file"


def test_the_readme_first_command_prints_one_line_at_once(unreachable_hub: dict[str, str], tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "rerank_core.cli",
        "what is the capital of france",
        str(ROOT / "examples" / "docs.jsonl"),
    ]
    started = time.monotonic()
    done = subprocess.run(command, env=unreachable_hub, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"no retry noise, just the error: {lines}"
    assert_names_the_routes(lines[0], MODEL)
    # huggingface_hub's own retries take over 20 s; the probe gives up after a few seconds at most.
    assert elapsed < 15, elapsed


@pytest.mark.slow
def test_export_onnx_says_so_too(unreachable_hub: dict[str, str], tmp_path: Path) -> None:
    command = [sys.executable, "-m", "rerank_core.cli", "export-onnx", MODEL, str(tmp_path / "out")]
    done = subprocess.run(command, env=unreachable_hub, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("rerank: error: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert_names_the_routes(done.stderr, MODEL)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["minilm-onnx", "./minilm-onnx", "~/no-such-model-here"])
def test_a_name_that_can_only_be_a_path_fails_at_once(
    name: str, unreachable_hub: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    def no_probe() -> bool:
        raise AssertionError("a path is never looked up on the hub")

    monkeypatch.setattr(_hub, "hub_reachable", no_probe)
    for engine in (TorchCrossEncoder, OnnxCrossEncoder):
        with pytest.raises(ConfigurationError, match="no model directory at") as caught:
            engine(name).warm_up()
        assert "org/name" in str(caught.value)


def test_a_bare_name_that_is_a_folder_loads(tiny_onnx: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copytree(tiny_onnx, tmp_path / "minilm-onnx")
    monkeypatch.chdir(tmp_path)
    assert OnnxCrossEncoder("minilm-onnx").predict_logits("q", ["a b"]) == OnnxCrossEncoder(tiny_onnx).predict_logits(
        "q", ["a b"]
    )


def test_a_cached_model_loads_from_the_cache_without_the_hub(
    tiny_onnx: str, unreachable_hub: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    commit = "0" * 40
    repo = tmp_path / "cache" / "models--rerank-tests--tiny-onnx"
    shutil.copytree(tiny_onnx, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    cached = OnnxCrossEncoder("rerank-tests/tiny-onnx")
    assert cached.predict_logits("q", ["a b"]) == OnnxCrossEncoder(tiny_onnx).predict_logits("q", ["a b"])
    assert cached._local_only, "the unreachable hub was not asked"


def test_the_probe_is_made_once_per_process(unreachable_hub: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[object] = []
    real = socket.create_connection

    def counting(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        connects.append(address)
        return real(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", counting)
    for _ in range(3):
        with pytest.raises(ConfigurationError, match="cannot be reached"):
            OnnxCrossEncoder(MODEL).warm_up()
    assert len(connects) == 1


def test_the_wrappers_warm_up_says_so_too(unreachable_hub: dict[str, str]) -> None:
    from haystack_integrations.components.rankers.rerank import RerankRanker
    from rerank_langchain import RerankCompressor
    from rerank_llamaindex import RerankPostprocessor

    for wrapper in (RerankCompressor, RerankPostprocessor, RerankRanker):
        with pytest.raises(ConfigurationError) as caught:
            wrapper(reranker=f"local:{MODEL}").warm_up()
        assert_names_the_routes(str(caught.value), MODEL)


def test_rerank_eval_says_so_in_one_line(unreachable_hub: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "Paris is in France."}\n')
    (data / "queries.jsonl").write_text('{"_id": "q1", "text": "capital of france"}\n')
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (tmp_path / "first.trec").write_text("q1 Q0 d1 1 1.0 run\n")
    command = [sys.executable, "-m", "rerank_core.cli", "eval", str(data), "--run", str(tmp_path / "first.trec")]
    command += ["--reranker", f"local:{MODEL}"]
    done = subprocess.run(command, env=unreachable_hub, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert_names_the_routes(errors[0], MODEL)
