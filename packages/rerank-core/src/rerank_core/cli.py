"""The `rerank` command: rerank documents from a file (or stdin) for one query, or for many with `--queries`.

    rerank "what is the capital of france" docs.jsonl --top-n 3
    rerank --queries queries.jsonl docs.jsonl --format jsonl --concurrency 8

With no provider configured (`--provider`, `--config`, `RERANK_PROVIDER`, `RERANK_CONFIG`), it runs the local
cross-encoder. Exit codes: 0 success, 1 the reranker failed (provider down, timeout, ...), 2 a user error
(bad arguments, missing or malformed file, missing key or other configuration problem).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rerank_core.base import Reranker
from rerank_core.config import RerankerConfig
from rerank_core.errors import ConfigurationError, InvalidInputError, RerankError
from rerank_core.loader import load_reranker
from rerank_core.models import Document, RerankResponse, to_document

FORMATS = ("jsonl", "txt", "csv")


class UserError(Exception):
    """A problem the user can fix: reported as one line, exit code 2, no traceback."""


@dataclass
class Query:
    text: str
    id: str | None = None
    documents: list[Document] | None = None
    """Candidates of this query only; None means the shared documents file."""


@dataclass
class Outcome:
    query: Query
    response: RerankResponse
    documents: list[Document] = field(repr=False)


# -- reading input ----------------------------------------------------------------------------------------------


def read_source(path: str) -> tuple[str, str]:
    """(name, text) of a file, or of stdin for '-'."""
    if path == "-":
        return "stdin", sys.stdin.read()
    file = Path(path)
    if not file.is_file():
        raise UserError(f"file not found: {path}")
    try:
        return path, file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None


def detect_format(name: str, text: str, forced: str | None) -> str:
    if forced:
        return forced
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if suffix == "json":
        return "jsonl"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "jsonl" if first.startswith(("{", '"')) else "txt"


def parse_documents(name: str, text: str, fmt: str) -> list[Document]:
    """JSON lines (objects with "text", or strings), one document per line of text, or CSV with a text column."""
    if fmt == "txt":
        return [Document(text=line) for line in text.splitlines() if line.strip()]
    if fmt == "csv":
        return parse_csv(name, text)
    return [json_document(item, name, line) for line, item in json_lines(name, text)]


def json_lines(name: str, text: str) -> list[tuple[int, Any]]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise UserError(f"{name}:{number}: not valid JSON ({error.msg})") from None
    return items


def json_document(item: Any, name: str, line: int) -> Document:
    """A JSON line as a document, read the way the library reads a str or a mapping with "text"."""
    if isinstance(item, str | dict):
        try:
            return to_document(item, line)
        except InvalidInputError:
            pass
    raise UserError(f'{name}:{line}: expected a JSON string or an object with a "text" field')


def parse_csv(name: str, text: str) -> list[Document]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise UserError(f'{name}: a CSV file needs a header row with a "text" column')
    documents = []
    for row in reader:
        raw_id = row.get("id")
        metadata = {k: v for k, v in row.items() if k not in ("text", "id") and k is not None}
        documents.append(Document(text=row["text"] or "", id=raw_id or None, metadata=metadata))
    return documents


def parse_queries(name: str, text: str, fmt: str) -> list[Query]:
    """One query a line: text, or JSON lines with "query" (optional "id", optional own "documents")."""
    if fmt == "txt":
        return [Query(text=line.strip()) for line in text.splitlines() if line.strip()]
    if fmt != "jsonl":
        raise UserError(f"{name}: queries must be JSON lines or text, one query per line")
    queries = []
    for line, item in json_lines(name, text):
        if isinstance(item, str):
            queries.append(Query(text=item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("query"), str):
            raise UserError(f'{name}:{line}: expected a JSON string or an object with a "query" field')
        documents = item.get("documents")
        if documents is not None and not isinstance(documents, list):
            raise UserError(f'{name}:{line}: "documents" must be a list')
        own = None if documents is None else [json_document(doc, name, line) for doc in documents]
        raw_id = item.get("id")
        queries.append(Query(text=item["query"], id=None if raw_id is None else str(raw_id), documents=own))
    return queries


# -- running ----------------------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, redrawn in place."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled, self.done = total, stream, enabled, 0

    def advance(self) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} queries")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


async def rerank_all(
    reranker: Reranker,
    queries: list[Query],
    shared: list[Document],
    top_n: int | None,
    concurrency: int,
    progress: Progress,
) -> list[Outcome]:
    """Every query, at most `concurrency` at a time; outcomes in input order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(query: Query) -> Outcome:
        documents = shared if query.documents is None else query.documents
        async with gate:
            try:
                response = await reranker.arerank(query.text, documents, top_n)
            except RerankError as error:
                label = query.id or query.text[:40]
                raise type(error)(
                    f"query {label!r}: {error.message}",
                    provider=error.provider,
                    status_code=error.status_code,
                    request_id=error.request_id,
                    hint=error.hint,
                ) from error
        progress.advance()
        return Outcome(query, response, documents)

    try:
        return list(await asyncio.gather(*(one(query) for query in queries)))
    finally:
        await reranker.aclose()


# -- output -----------------------------------------------------------------------------------------------------


def result_rows(outcome: Outcome) -> list[dict[str, Any]]:
    rows = []
    for rank, result in enumerate(outcome.response.results, start=1):
        row: dict[str, Any] = {
            "rank": rank,
            "index": result.index,
            "score": result.relevance_score,
            "id": result.document.id,
            "text": result.document.text,
        }
        if result.document.metadata:
            row["metadata"] = result.document.metadata
        if result.window is not None:
            row["window"] = result.window.model_dump()
        rows.append(row)
    return rows


def as_json(outcome: Outcome) -> dict[str, Any]:
    response = outcome.response
    return {
        "query": outcome.query.text,
        "query_id": outcome.query.id,
        "provider": response.provider,
        "model": response.model,
        "passthrough": response.passthrough,
        "results": result_rows(outcome),
    }


def write_output(outcomes: list[Outcome], fmt: str, many: bool, out: TextIO) -> None:
    if fmt == "json":
        payload: Any = [as_json(o) for o in outcomes] if many else as_json(outcomes[0])
        out.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    elif fmt == "jsonl":  # one line per result, like a run file
        for outcome in outcomes:
            for row in result_rows(outcome):
                line = {"query": outcome.query.text, "query_id": outcome.query.id, **row}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
    else:
        for number, outcome in enumerate(outcomes):
            if many:
                out.write(("\n" if number else "") + f"query: {outcome.query.text}\n")
            write_table(outcome, out)


def write_table(outcome: Outcome, out: TextIO) -> None:
    response = outcome.response
    out.write(f"{'rank':>4}  {'score':>8}  {'index':>5}  {'id':<12}  text\n")
    for row in result_rows(outcome):
        text = " ".join(row["text"].split())
        text = text if len(text) <= 70 else text[:69] + "…"
        out.write(f"{row['rank']:>4}  {row['score']:>8.4f}  {row['index']:>5}  {row['id'] or ''!s:<12}  {text}\n")
    note = " (passthrough: every reranker failed, original order)" if response.passthrough else ""
    out.write(f"-- {response.provider}:{response.model or 'default'}, {len(outcome.documents)} documents{note}\n")


# -- entry point ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank",
        description="Rerank documents for a query with a hosted provider or the local cross-encoder.",
        epilog='Documents: .jsonl (objects with "text", or strings), .txt (one per line), .csv (a text column), '
        "or - for stdin. With no provider configured, the local cross-encoder is used.",
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="QUERY DOCS", help='the query, then the documents file ("-" for stdin)'
    )
    parser.add_argument(
        "--queries", metavar="FILE", help="rerank every query in FILE (.jsonl or .txt); DOCS is optional"
    )
    parser.add_argument("--provider", help='provider or "provider:model" (default: RERANK_PROVIDER, else local)')
    parser.add_argument("--model", help="model name (or a local model directory for --provider local)")
    parser.add_argument("--base-url", help="provider base URL (self-hosted servers, proxies)")
    parser.add_argument("--config", metavar="FILE", help="a .toml/.yaml/.json config file (default: RERANK_CONFIG)")
    parser.add_argument("--top-n", type=int, help="return only the N best documents")
    parser.add_argument(
        "--normalize", choices=("sigmoid",), help="map logit scores (NIM, raw TEI/Infinity) into 0..1 probabilities"
    )
    parser.add_argument("--format", choices=("table", "json", "jsonl"), default="table", help="output format")
    parser.add_argument("--docs-format", choices=FORMATS, help="format of DOCS when the file name does not say")
    parser.add_argument("--concurrency", type=int, default=4, help="queries in flight at once with --queries")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)"
    )
    return parser


def load(args: argparse.Namespace) -> tuple[list[Query], list[Document], Reranker]:
    if args.queries:
        if len(args.inputs) > 1:
            raise UserError("with --queries, give at most one DOCS file")
        name, text = read_source(args.queries)
        queries = parse_queries(name, text, detect_format(name, text, None))
        docs_path = args.inputs[0] if args.inputs else None
        if not queries:
            raise UserError(f"{name} holds no queries")
        if docs_path is None and any(query.documents is None for query in queries):
            raise UserError('give a DOCS file, or "documents" on every line of the queries file')
    else:
        if len(args.inputs) != 2:
            raise UserError('expected a QUERY and a DOCS file, e.g. rerank "my question" docs.jsonl')
        queries, docs_path = [Query(text=args.inputs[0])], args.inputs[1]
    shared: list[Document] = []
    if docs_path is not None:
        name, text = read_source(docs_path)
        shared = parse_documents(name, text, detect_format(name, text, args.docs_format))
    for value, flag in ((args.top_n, "--top-n"), (args.concurrency, "--concurrency")):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be a positive number")
    return queries, shared, load_reranker(reranker_config(args))


def reranker_config(args: argparse.Namespace) -> RerankerConfig:
    """The config file or environment, with the command-line flags on top."""
    config = RerankerConfig.from_file(args.config) if args.config else RerankerConfig.from_env()
    flags: dict[str, Any] = {}
    if args.provider:
        spec = RerankerConfig.from_spec(args.provider)
        flags["provider"] = spec.provider
        if spec.model:
            flags["model"] = spec.model
    if args.model:
        flags["model"] = args.model
    if args.base_url:
        flags["base_url"] = args.base_url
    if args.normalize:
        flags["normalize"] = args.normalize
    return config.with_overrides(flags)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        queries, shared, reranker = load(args)
        show = args.progress if args.progress is not None else sys.stderr.isatty()
        progress = Progress(len(queries), sys.stderr, enabled=show and args.queries is not None)
        outcomes = asyncio.run(rerank_all(reranker, queries, shared, args.top_n, args.concurrency, progress))
        write_output(outcomes, args.format, many=args.queries is not None, out=sys.stdout)
    except (UserError, ConfigurationError, InvalidInputError) as error:
        print(f"rerank: error: {error}", file=sys.stderr)
        return 2
    except RerankError as error:
        print(f"rerank: failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rerank ... | head`: the reader left; not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
