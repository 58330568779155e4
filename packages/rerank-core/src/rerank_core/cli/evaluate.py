"""`rerank eval`: which reranker, at what cost, is best on your data.

Reads a BEIR-style data set (`corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`), takes first-stage
candidates from a TREC run file or BM25 (`bm25s`), reranks them with each `--reranker`, and scores every system
with `ir_measures` (pytrec_eval underneath). Needs the `eval` extra: pip install "rerank-core[eval]".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from rerank_core._version import VERSION
from rerank_core.base import Reranker
from rerank_core.cli.common import INTERRUPT, Progress, UserError, describe
from rerank_core.cli.flags import add_common_flags, apply_flags, positive, setup_logging, show_progress
from rerank_core.cli.report import write_html, write_plot, write_table
from rerank_core.config import RerankerConfig
from rerank_core.errors import RerankError
from rerank_core.loader import load_reranker
from rerank_core.models import Document

EXTRA_HINT = 'pip install "rerank-core[eval]"'
DEFAULT_METRICS = "nDCG@10,RR@10,R@10,R@100"
Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank eval",
        description="Compare rerankers on a BEIR-style data set: quality (nDCG, MRR, recall), latency and usage.",
        epilog="Example: rerank eval ./scifact --first-stage bm25 --depth 100 --reranker local:./model "
        "--reranker cohere:rerank-v3.5 --output report.json --save-runs runs/ --plot report.png",
    )
    parser.add_argument("data", nargs="?", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    parser.add_argument("--split", default="test", help="the qrels split (default: test)")
    parser.add_argument("--corpus", help="corpus.jsonl ({_id, title, text} a line); overrides the folder's")
    parser.add_argument("--queries", help="queries.jsonl ({_id, text} a line); overrides the folder's")
    parser.add_argument("--qrels", help="qrels .tsv (query-id, corpus-id, score); overrides the folder's")
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--run", metavar="FILE", help="first-stage candidates: a TREC run file")
    stage.add_argument("--first-stage", choices=("bm25",), help="first-stage retrieval built in: bm25 (bm25s)")
    parser.add_argument("--depth", type=int, default=100, help="candidates per query to rerank (default 100)")
    parser.add_argument(
        "--reranker", action="append", default=[], metavar="SPEC", help="a spec or config file; repeat to compare"
    )
    parser.add_argument("--metrics", default=DEFAULT_METRICS, help=f"ir_measures names (default {DEFAULT_METRICS})")
    parser.add_argument("--max-queries", type=int, help="evaluate only the first N judged queries")
    parser.add_argument("--concurrency", type=int, default=4, help="queries in flight at once (default 4)")
    parser.add_argument("--output", metavar="FILE", help="write the report as JSON")
    parser.add_argument("--save-runs", metavar="DIR", help="write TREC runs; a re-run resumes from them")
    parser.add_argument("--plot", metavar="FILE", help="quality vs latency picture (.png; needs matplotlib)")
    parser.add_argument("--html", metavar="FILE", help="a self-contained HTML report")
    add_common_flags(parser)
    return parser


# -- data -------------------------------------------------------------------------------------------------------


@dataclass
class DataSet:
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: Qrels
    name: str


def jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    with path.open(encoding="utf-8-sig") as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise UserError(f"{path}:{number}: not valid JSON ({error.msg})") from None


def read_qrels(path: Path) -> Qrels:
    """BEIR qrels (`query-id corpus-id score`, a header line) or TREC qrels (`qid 0 docid rel`)."""
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    qrels: Qrels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        parts = line.split()
        if not parts or (number == 1 and parts[0] == "query-id"):
            continue
        if len(parts) not in (3, 4):
            raise UserError(f"{path}:{number}: expected query-id, corpus-id, score")
        query_id, doc_id, grade = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], *parts[2:])
        try:
            qrels.setdefault(query_id, {})[doc_id] = int(grade)
        except ValueError:
            raise UserError(f"{path}:{number}: the relevance score must be an integer") from None
    return qrels


def read_data(args: argparse.Namespace) -> DataSet:
    folder = Path(args.data) if args.data else None
    if folder is None and not (args.corpus and args.queries and args.qrels):
        raise UserError("give a BEIR folder, or all of --corpus, --queries and --qrels")
    if folder is not None and not folder.is_dir():
        raise UserError(f"not a folder: {folder}")

    def path(flag: str | None, *parts: str) -> Path:
        return Path(flag) if flag else Path(folder or ".", *parts)

    corpus = {
        str(row["_id"]): " ".join(part for part in (row.get("title"), row.get("text")) if part)
        for row in jsonl(path(args.corpus, "corpus.jsonl"))
    }
    queries = {str(row["_id"]): str(row["text"]) for row in jsonl(path(args.queries, "queries.jsonl"))}
    qrels = read_qrels(path(args.qrels, "qrels", f"{args.split}.tsv"))
    judged = [query_id for query_id in qrels if query_id in queries]
    if not judged:
        raise UserError("no judged query has a text in the queries file")
    if args.max_queries is not None:
        judged = judged[: args.max_queries]
    name = folder.name if folder is not None else Path(args.corpus).stem
    return DataSet(corpus, {q: queries[q] for q in judged}, {q: qrels[q] for q in judged}, name)


# -- first stage ------------------------------------------------------------------------------------------------


def read_run(path: Path, depth: int, wanted: dict[str, str]) -> Run:
    """A TREC run (`qid Q0 docid rank score tag`), the `depth` best of each wanted query."""
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    run: Run = {}
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise UserError(f"{path}:{number}: expected 'qid Q0 docid rank score tag'")
            if parts[0] in wanted:
                try:
                    run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
                except ValueError:
                    raise UserError(f"{path}:{number}: the score is not a number") from None
    return {query_id: top(docs, depth) for query_id, docs in run.items()}


def top(scores: dict[str, float], depth: int) -> dict[str, float]:
    return dict(sorted(scores.items(), key=lambda item: -item[1])[:depth])


def bm25(data: DataSet, depth: int) -> Run:
    """BM25 over title + text with bm25s (English stop words; Snowball stemming when PyStemmer is there)."""
    try:
        import bm25s
    except ImportError:
        raise UserError(f"--first-stage bm25 needs bm25s: {EXTRA_HINT}") from None
    try:
        import Stemmer

        stemmer: Any = Stemmer.Stemmer("english")
    except ImportError:
        stemmer = None
    ids = list(data.corpus)
    tokens = bm25s.tokenize(list(data.corpus.values()), stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    query_ids = list(data.queries)
    query_tokens = bm25s.tokenize(list(data.queries.values()), stopwords="en", stemmer=stemmer, show_progress=False)
    found, scores = retriever.retrieve(query_tokens, k=min(depth, len(ids)), show_progress=False)
    return {
        query_id: {ids[int(doc)]: float(score) for doc, score in zip(found[row], scores[row], strict=True)}
        for row, query_id in enumerate(query_ids)
    }


# -- reranking --------------------------------------------------------------------------------------------------


@dataclass
class QueryStats:
    latency: float | None = None
    documents: int = 0
    tokens: int | None = None
    cache_hits: int = 0
    error: str | None = None


@dataclass
class System:
    name: str
    kind: str
    run: Run = field(default_factory=dict)
    stats: dict[str, QueryStats] = field(default_factory=dict)
    scorer: dict[str, Any] = field(default_factory=dict)
    """What scored: provider, model (a local model's path), engine."""


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "reranker"


def write_trec(file: TextIO, query_id: str, scores: dict[str, float], tag: str) -> None:
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    file.writelines(f"{query_id} Q0 {doc} {rank} {score:.6f} {tag}\n" for rank, (doc, score) in enumerate(ranked, 1))


class Saved:
    """A reranker's run file and its per-query stats (`<name>.trec`, `<name>.stats.jsonl`), appended per query."""

    def __init__(self, folder: Path, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.run_path = folder / f"{slug(name)}.trec"
        self.stats_path = folder / f"{slug(name)}.stats.jsonl"
        self.tag = slug(name)

    def load(self, system: System) -> None:
        """Queries finished by an earlier run (a stats line without error, and lines in the run file)."""
        if not (self.run_path.is_file() and self.stats_path.is_file()):
            return
        run: Run = {}
        for line in self.run_path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 6:
                run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
        for line in self.stats_path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else None
            if record and record.get("error") is None and record["query_id"] in run:
                query_id = record.pop("query_id")
                system.stats[query_id] = QueryStats(**record)
                system.run[query_id] = run[query_id]

    def append(self, query_id: str, scores: dict[str, float] | None, stats: QueryStats) -> None:
        if scores is not None:
            with self.run_path.open("a", encoding="utf-8") as file:
                write_trec(file, query_id, scores, self.tag)
        with self.stats_path.open("a", encoding="utf-8") as file:
            file.write(json.dumps({"query_id": query_id, **stats.__dict__}) + "\n")


async def rerank_system(
    system: System,
    reranker: Reranker,
    data: DataSet,
    candidates: Run,
    concurrency: int,
    saved: Saved | None,
    progress: Progress,
    instruction: str | None = None,
) -> None:
    todo = [query_id for query_id in data.queries if query_id not in system.stats]
    total, done = len(data.queries), len(data.queries) - len(todo)
    gate = asyncio.Semaphore(concurrency)
    INTERRUPT.summary = lambda: (
        f"{system.name}: {len(system.stats)} of {total} queries done"
        + (f"; runs kept in {saved.run_path.parent} (run again to resume)" if saved else "")
    )

    async def one(query_id: str) -> None:
        nonlocal done
        docs = [Document(text=data.corpus.get(doc, ""), id=doc) for doc in candidates.get(query_id, {})]
        stats = QueryStats(documents=len(docs))
        scores: dict[str, float] | None = None
        async with gate:
            started = time.perf_counter()
            try:
                response = await reranker.arerank(data.queries[query_id], docs, instruction=instruction)
            except RerankError as error:
                stats.error = describe(error)
            else:
                stats.latency = time.perf_counter() - started
                stats.tokens = response.usage.total_tokens or response.usage.prompt_tokens
                stats.cache_hits = response.cache.hits if response.cache else 0
                scores = {str(result.document.id or ""): result.relevance_score for result in response.results}
        system.stats[query_id] = stats
        if scores is not None:
            system.run[query_id] = scores
        if saved is not None:
            saved.append(query_id, scores, stats)
        done += 1
        progress.show(done, total, force=done == total)

    try:
        if todo:  # load the model (or open the pool) first, so the first query's latency is only its own
            await asyncio.to_thread(reranker.warm_up)
        await asyncio.gather(*(one(query_id) for query_id in todo))
    finally:
        progress.finish()
        await reranker.aclose()


# -- metrics and report -----------------------------------------------------------------------------------------


def parse_metrics(text: str) -> list[Any]:
    try:
        import ir_measures
    except ImportError:
        raise UserError(f"rerank eval needs ir_measures: {EXTRA_HINT}") from None
    try:
        return [ir_measures.parse_measure(name.strip()) for name in text.split(",") if name.strip()]
    except Exception as error:  # ir_measures raises several types for a bad name
        raise UserError(f"--metrics: {error}") from None


def quality(system: System, measures: list[Any], qrels: Qrels) -> dict[str, float]:
    """Mean of each measure over every evaluated query; a query the system failed on counts as 0.

    The measures see each system's own order (a run is kept in rank order): equal scores stay in the order the
    reranker returned them (the first-stage order), where trec_eval alone would break ties by document id."""
    import ir_measures

    per_query: dict[str, dict[str, float]] = {str(m): {} for m in measures}
    run = {
        query_id: {doc: float(len(docs) - rank) for rank, doc in enumerate(docs)}
        for query_id, docs in system.run.items()
        if docs
    }
    if run:
        for metric in ir_measures.iter_calc(measures, qrels, run):
            per_query[str(metric.measure)][metric.query_id] = float(metric.value)
    return {name: sum(values.get(q, 0.0) for q in qrels) / len(qrels) for name, values in per_query.items()}


def percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarize(system: System, measures: list[Any], qrels: Qrels) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": system.name, "kind": system.kind, **quality(system, measures, qrels)}
    if system.kind == "reranker":
        stats = [system.stats[q] for q in qrels if q in system.stats]
        latencies = [s.latency * 1000 for s in stats if s.latency is not None]
        tokens = [s.tokens for s in stats if s.tokens is not None]
        entry |= {
            "scorer": system.scorer,
            "queries": len(stats),
            "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
            "documents_sent": sum(s.documents for s in stats),
            "tokens": sum(tokens) if tokens else None,
            "cache_hits": sum(s.cache_hits for s in stats),
            "failures": sum(1 for s in stats if s.error is not None),
            "errors": sorted({s.error for s in stats if s.error is not None})[:5],
        }
    return entry


def scorer(reranker: Reranker) -> dict[str, Any]:
    """Provider, model and (for a local model) engine of a reranker, through the cache and chunking layers."""
    inner: Any = reranker
    while hasattr(inner, "inner"):
        inner = inner.inner
    engine = getattr(inner, "engine", None)
    return {"provider": inner.provider, "model": inner.model, **({"engine": engine} if engine else {})}


def versions() -> dict[str, str]:
    """rerank-core, Python, and the packages that scored (those this run imported)."""
    found = {"rerank-core": VERSION, "python": sys.version.split()[0]}
    for module, distribution in (("onnxruntime", "onnxruntime"), ("torch", "torch"), ("transformers", "transformers")):
        if module in sys.modules:
            with contextlib.suppress(metadata.PackageNotFoundError):
                found[distribution] = metadata.version(distribution)
    return found


def label(spec: str) -> str:
    """A short name: a config file's stem, or `provider:model` with a model directory cut to its last part."""
    if spec.lower().endswith((".toml", ".yaml", ".yml", ".json")):
        return Path(spec).stem
    provider, _, model = spec.partition(":")
    return f"{provider}:{Path(model).name}" if "/" in model and Path(model).exists() else spec


def run_eval(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    positive(args, "depth", "concurrency", "max_queries")
    if not (args.run or args.first_stage):
        raise UserError("give the first stage: --run FILE or --first-stage bm25")
    measures = parse_metrics(args.metrics)
    data = read_data(args)
    configs = [apply_flags(RerankerConfig.load(spec), args) for spec in args.reranker]
    first_name = "bm25" if args.first_stage else Path(args.run).stem
    first = System(first_name, "first-stage")
    first.run = bm25(data, args.depth) if args.first_stage else read_run(Path(args.run), args.depth, data.queries)
    folder = Path(args.save_runs) if args.save_runs else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{slug(first_name)}.trec").open("w", encoding="utf-8") as file:
            for query_id, scores in first.run.items():
                write_trec(file, query_id, scores, slug(first_name))

    systems = [first]
    for spec, config in zip(args.reranker, configs, strict=True):
        name = label(spec)
        system = System(name, "reranker")
        saved = Saved(folder, name) if folder is not None else None
        if saved is not None:
            saved.load(system)
        progress = Progress(sys.stderr, show_progress(args), f"queries ({name})")
        reranker = load_reranker(config)
        system.scorer = scorer(reranker)
        if args.instruction is not None:
            reranker._check_instruction(args.instruction)  # once, not as an error on every query
        asyncio.run(
            rerank_system(system, reranker, data, first.run, args.concurrency, saved, progress, args.instruction)
        )
        systems.append(system)

    report: dict[str, Any] = {
        "data": {
            "name": data.name,
            "split": args.split,
            "queries": len(data.queries),
            "depth": args.depth,
            "first_stage": first_name,
        },
        "metrics": [str(m) for m in measures],
        "systems": [summarize(system, measures, data.qrels) for system in systems],
        "run": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "concurrency": args.concurrency,
            "instruction": args.instruction,
        },
        "versions": versions(),
    }
    write_table(report, sys.stdout)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.plot:
        write_plot(report, Path(args.plot))
    if args.html:
        write_html(report, Path(args.html))
    failed = any(system.get("failures") for system in report["systems"])
    return 1 if failed else 0
