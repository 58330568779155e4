"""`rerank eval` as a subprocess on real files: a tiny BEIR-format data set whose metrics the test computes by
hand from the rankings, resuming from saved runs, failures, the report files, and BEIR SciFact with the local
tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.cli.helpers import Spawned, run, wait_until
from tests.composition.helpers import closed_port_url
from tests.support.emulator import Fault, overlap_score
from tests.support.fixtures import StartEmulator

SCIFACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scifact"
CORPUS = {
    "d1": ("Apples", "apple orchards grow red apple fruit"),
    "d2": ("Bread", "bread is baked from flour and water"),
    "d3": ("Cider", "cider is pressed from apple juice"),
    "d4": ("Rivers", "the seine river flows through paris"),
    "d5": ("Flour", "flour mills grind wheat"),
    "d6": ("Paris", "paris is the capital of france on the seine"),
}
QUERIES = {"q1": "apple fruit", "q2": "how is bread baked from flour", "q3": "capital of france", "q4": "unjudged"}
QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d2": 2, "d5": 1, "d4": 0}, "q3": {"d6": 1}}
FIRST_STAGE = {  # deliberately poor orders, so reranking changes them
    "q1": ["d2", "d3", "d4", "d1", "d5"],
    "q2": ["d5", "d4", "d1", "d2", "d6"],
    "q3": ["d4", "d1", "d2", "d3", "d5"],  # d6, the relevant one, is not a candidate
}


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in CORPUS.items())
    )
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, docs in QRELS.items() for d, g in docs.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    path = tmp_path / "first.trec"
    path.write_text(
        "".join(
            f"{q} Q0 {d} {rank} {10 - rank} bm25\n" for q, docs in FIRST_STAGE.items() for rank, d in enumerate(docs, 1)
        )
    )
    return path


# -- the metrics, by their textbook definitions ------------------------------------------------------------------


def ndcg(ranking: list[str], judged: dict[str, int], k: int = 10) -> float:
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def reciprocal_rank(ranking: list[str], judged: dict[str, int], k: int = 10) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ranking[:k]) if judged.get(d, 0) > 0), 0.0)


def recall(ranking: list[str], judged: dict[str, int], k: int) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranking[:k])) / len(relevant)


def expected(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    means = {"nDCG@10": ndcg, "RR@10": reciprocal_rank}
    out = {name: sum(f(rankings.get(q, []), qrels[q]) for q in qrels) / len(qrels) for name, f in means.items()}
    out["R@3"] = sum(recall(rankings.get(q, []), qrels[q], 3) for q in qrels) / len(qrels)
    return out


def reranked_by_overlap() -> dict[str, list[str]]:
    """What the emulator's scorer makes of the candidates: score descending, ties in first-stage order."""

    def text(d: str) -> str:
        return " ".join(CORPUS[d])

    return {q: sorted(docs, key=lambda d: -overlap_score(QUERIES[q], text(d))) for q, docs in FIRST_STAGE.items()}


def read_trec(path: Path) -> dict[str, list[str]]:
    rankings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        q, _, d, rank, _, _ = line.split()
        rankings.setdefault(q, []).append(d)
        assert int(rank) == len(rankings[q])
    return rankings


def emulator_config(folder: Path, base_url: str) -> str:
    """A reranker config file (its stem names the reranker in the report and the run file)."""
    path = folder / "emu.toml"
    path.write_text(f'provider = "generic"\nmodel = "m"\nbase_url = "{base_url}"\napi_key_env = "EMU_KEY"\n')
    return str(path)


# -- tests -------------------------------------------------------------------------------------------------------


def test_metrics_match_a_hand_computation(
    start_emulator: StartEmulator, beir: Path, run_file: Path, tmp_path: Path
) -> None:
    emu = start_emulator("generic")
    report_path, runs = tmp_path / "report.json", tmp_path / "runs"
    args = [
        "eval", str(beir), "--run", str(run_file), "--depth", "5", "--metrics", "nDCG@10,RR@10,R@3",
        "--reranker", emulator_config(tmp_path, emu.base_url), "--output", str(report_path),
        "--save-runs", str(runs), "--concurrency", "2",
    ]  # fmt: skip
    done = run(*args, EMU_KEY="k")
    assert done.returncode == 0, done.stderr

    report = json.loads(report_path.read_text())
    first, reranker = report["systems"]
    for name, value in expected(FIRST_STAGE, QRELS).items():
        assert first[name] == pytest.approx(value), name
    assert reranked_by_overlap() == read_trec(runs / "emu.trec")
    for name, value in expected(reranked_by_overlap(), QRELS).items():
        assert reranker[name] == pytest.approx(value), name
    assert reranker["nDCG@10"] != first["nDCG@10"]  # reranking changed the order
    assert report["data"]["queries"] == 3  # q4 has no judgements
    assert (reranker["documents_sent"], reranker["failures"], reranker["queries"]) == (15, 0, 3)
    assert reranker["latency_ms"]["p50"] > 0
    assert done.stdout.splitlines()[3].split()[0] == "emu"  # the terminal table
    assert done.stdout.splitlines()[1].split()[:4] == ["system", "nDCG@10", "RR@10", "R@3"]

    again = run(*args, EMU_KEY="k")  # resumes: nothing left to send
    assert again.returncode == 0, again.stderr
    assert emu.request_count == 3
    assert json.loads(report_path.read_text())["systems"] == report["systems"]


def test_a_failing_reranker_counts_its_failures_as_zero(beir: Path, run_file: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    done = run(
        "eval", str(beir), "--run", str(run_file), "--reranker", emulator_config(tmp_path, closed_port_url()),
        "--max-retries", "0", "--output", str(report_path), EMU_KEY="k",
    )  # fmt: skip
    assert done.returncode == 1
    broken = json.loads(report_path.read_text())["systems"][1]
    assert broken["failures"] == 3
    assert broken["nDCG@10"] == 0.0
    assert "RerankConnectionError" not in broken["errors"][0]
    assert broken["errors"][0].startswith("[generic]")
    assert "Traceback" not in done.stderr


def test_bm25_first_stage_plot_and_html(start_emulator: StartEmulator, beir: Path, tmp_path: Path) -> None:
    emu = start_emulator("generic")
    plot, page, report_path = tmp_path / "r.png", tmp_path / "r.html", tmp_path / "r.json"
    done = run(
        "eval", "--corpus", str(beir / "corpus.jsonl"), "--queries", str(beir / "queries.jsonl"),
        "--qrels", str(beir / "qrels" / "test.tsv"), "--first-stage", "bm25", "--depth", "3",
        "--reranker", emulator_config(tmp_path, emu.base_url), "--plot", str(plot), "--html", str(page),
        "--output", str(report_path), EMU_KEY="k",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = json.loads(report_path.read_text())["systems"][0]
    assert first["name"] == "bm25"
    assert first["R@100"] == pytest.approx(
        expected({"q1": ["d1", "d3"], "q2": ["d2", "d5"], "q3": ["d6"]}, QRELS)["R@3"]
    )
    assert plot.read_bytes().startswith(b"\x89PNG")
    html = page.read_text()
    assert "<table>" in html
    assert "data:image/png;base64," in html
    assert "<td>emu</td>" in html
    assert "th:first-child{text-align:left}" in html, "the header aligns with its column"
    assert "concurrency" in html
    assert "rerank-core" in html


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give the first stage: --run FILE or --first-stage bm25"),
        (["--first-stage", "bm25", "--metrics", "nDCG@x"], "--metrics"),
        (["--run", "missing.trec"], "file not found: missing.trec"),
    ],
)
def test_eval_user_errors(beir: Path, extra: list[str], message: str, tmp_path: Path) -> None:
    done = run("eval", str(beir), *extra, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not SCIFACT.is_dir(), reason="BEIR SciFact is in ../shared/data (tests only)")
@pytest.mark.slow
def test_scifact_subset_with_the_local_tiny_model(tiny_cross_encoder: str, tmp_path: Path) -> None:
    report_path, runs = tmp_path / "report.json", tmp_path / "runs"
    done = run(
        "eval", str(SCIFACT), "--first-stage", "bm25", "--depth", "10", "--max-queries", "15",
        "--reranker", f"local:{tiny_cross_encoder}", "--output", str(report_path), "--save-runs", str(runs),
        "--metrics", "nDCG@10,RR@10,R@3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["data"] == {"name": "scifact", "split": "test", "queries": 15, "depth": 10, "first_stage": "bm25"}

    qrels: dict[str, dict[str, int]] = {}
    for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, g = line.split("\t")
        qrels.setdefault(q, {})[d] = int(g)
    subset = dict(list(qrels.items())[:15])
    bm25, reranker = report["systems"]
    runs_by_name = {
        "bm25": read_trec(runs / "bm25.trec"),
        "local": read_trec(runs / f"local_{Path(tiny_cross_encoder).name}.trec"),
    }
    assert set(runs_by_name["local"]) == set(subset)
    assert all(len(docs) == 10 for docs in runs_by_name["local"].values())
    for system, rankings in zip((bm25, reranker), runs_by_name.values(), strict=True):
        for name, value in expected(rankings, subset).items():
            assert system[name] == pytest.approx(value), (system["name"], name)
    assert reranker["documents_sent"] == 150
    assert reranker["tokens"] > 0
    assert bm25["nDCG@10"] > 0.5  # BM25 is a real retriever here; the random-weight tiny model is not
    # What scored, when and with what: enough to reproduce the figures.
    assert reranker["scorer"]["model"] == tiny_cross_encoder
    assert reranker["scorer"]["engine"] in ("onnx", "torch")
    assert report["run"]["concurrency"] == 4  # the default
    assert report["run"]["date"].endswith("+00:00")
    versions = report["versions"]
    assert {"rerank-core", "python"} <= set(versions)
    assert ("onnxruntime" in versions) or ("torch" in versions), "the engine's package is named"


def test_ctrl_c_keeps_the_saved_runs_and_a_rerun_resumes(
    start_emulator: StartEmulator, beir: Path, run_file: Path, tmp_path: Path
) -> None:
    emu = start_emulator("generic")
    emu.fail_next(Fault(), Fault(delay=120))  # q1 answers, q2 hangs
    runs = tmp_path / "runs"
    args = [
        "eval", str(beir), "--run", str(run_file), "--reranker", emulator_config(tmp_path, emu.base_url),
        "--save-runs", str(runs), "--concurrency", "1", "--timeout", "300",
    ]  # fmt: skip
    cli = Spawned(*args, EMU_KEY="k")
    try:
        wait_until(lambda: emu.request_count == 2)  # q1 is saved, q2 is waiting on the emulator
        code, elapsed = cli.interrupt()
    finally:
        cli.kill()
    assert code == 130
    assert elapsed < 5.0
    assert "Traceback" not in cli.stderr
    assert f"interrupted: emu: 1 of 3 queries done; runs kept in {runs}" in cli.stderr
    assert set(read_trec(runs / "emu.trec")) == {"q1"}

    resumed = run(*args, EMU_KEY="k")
    assert resumed.returncode == 0, resumed.stderr
    assert emu.request_count == 4  # only q2 and q3 were sent again
    assert set(read_trec(runs / "emu.trec")) == {"q1", "q2", "q3"}


def test_latency_ticks_read_in_seconds_past_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    from rerank_core.cli import report as report_module

    captured: dict[str, list[str]] = {}
    real_close = pyplot.close

    def keep_ticks(figure: object) -> None:
        figure.canvas.draw()  # type: ignore[attr-defined]
        axes = figure.axes[0]  # type: ignore[attr-defined]
        captured["ticks"] = [label.get_text() for label in axes.get_xticklabels()]
        captured["xlabel"] = [axes.get_xlabel()]
        real_close(figure)  # type: ignore[arg-type]

    slow: dict[str, object] = {
        "data": {"name": "d", "split": "test", "queries": 3, "depth": 10, "first_stage": "bm25"},
        "metrics": ["nDCG@10"],
        "systems": [
            {"name": "bm25", "kind": "first-stage", "nDCG@10": 0.3},
            {"name": "big", "kind": "reranker", "nDCG@10": 0.5, "latency_ms": {"p50": 23_456.0, "p95": 30_000.0}},
        ],
    }
    monkeypatch.setattr(pyplot, "close", keep_ticks)
    assert report_module.plot_png(slow).startswith(b"\x89PNG")
    assert captured["xlabel"] == ["median latency per query (s)"]
    assert all(len(tick.replace(".", "").replace("−", "")) <= 3 for tick in captured["ticks"] if tick), captured
