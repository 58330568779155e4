"""The `rerank` command: rerank documents from a file (or stdin) for one query, or for many with `--queries`.

    rerank "what is the capital of france" docs.jsonl --top-n 3
    rerank --queries queries.jsonl docs.jsonl --format jsonl --concurrency 8
    rerank eval ./scifact --first-stage bm25 --reranker local:./my-model      (see rerank eval --help)
    rerank export-onnx MODEL FOLDER [--int8]

With no provider configured (`--provider`, `--config`, `RERANK_PROVIDER`, `RERANK_CONFIG`), it runs the local
cross-encoder. Exit codes: 0 success, 1 the reranker failed (for --queries: at least one query failed),
2 a user error (bad arguments, missing or malformed file, missing key or other configuration problem),
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rerank_core._version import VERSION
from rerank_core.base import Reranker
from rerank_core.cli.common import INTERRUPT, Progress, UserError, describe
from rerank_core.cli.flags import add_common_flags, apply_flags, positive, setup_logging, show_progress
from rerank_core.cli.inputs import FORMATS, Query, Source, detect_format, iter_documents, parse_queries
from rerank_core.cli.output import Writer
from rerank_core.cli.run import Settings, rerank_many, rerank_stream
from rerank_core.config import RerankerConfig, replica_urls
from rerank_core.errors import ConfigurationError, InvalidInputError, RerankError
from rerank_core.loader import load_reranker
from rerank_core.models import validate_query

SUBCOMMANDS = ("eval", "export-onnx")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank",
        description="Rerank documents for a query with a hosted provider or the local cross-encoder.",
        epilog='Documents: .jsonl (objects with "text", or strings), .json (an array of them), .txt (one per line), '
        ".csv (a text column), or - for stdin. With no provider configured, the local cross-encoder is used. "
        "Subcommands: `rerank eval` (compare rerankers on a BEIR-style data set; see rerank eval --help), "
        "`rerank export-onnx MODEL FOLDER [--int8]` (export a local model to ONNX). "
        'A query that is a subcommand\'s name needs "--" first: rerank -- eval docs.txt',
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="QUERY DOCS", help='the query, then the documents file ("-" for stdin)'
    )
    parser.add_argument("--version", action="version", version=f"rerank {VERSION}")
    parser.add_argument(
        "--queries", metavar="FILE", help="rerank every query in FILE (.jsonl, .json or .txt); DOCS is optional"
    )
    parser.add_argument("--provider", help='provider or "provider:model" (default: RERANK_PROVIDER, else local)')
    parser.add_argument("--model", help="model name (or a local model directory for --provider local)")
    parser.add_argument(
        "--base-url",
        help="provider base URL (self-hosted servers, proxies); replicas of one deployment separated by commas",
    )
    parser.add_argument("--config", metavar="FILE", help="a .toml/.yaml/.json config file (default: RERANK_CONFIG)")
    parser.add_argument("--top-n", type=int, help="return only the N best documents")
    parser.add_argument("--score-threshold", type=float, help="drop documents scoring below this")
    parser.add_argument(
        "--normalize", choices=("sigmoid",), help="map logit scores (NIM, raw TEI/Infinity) into 0..1 probabilities"
    )
    parser.add_argument("--format", choices=("table", "json", "jsonl"), default="table", help="output format")
    parser.add_argument("--docs-format", choices=FORMATS, help="format of DOCS when the file name does not say")
    parser.add_argument("--concurrency", type=int, default=4, help="queries in flight at once with --queries")
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="documents read and sent per call for one query (default 1000)"
    )
    parser.add_argument("--fail-fast", action="store_true", help="with --queries, stop at the first failing query")
    add_common_flags(parser)
    return parser


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
        flags["base_url"] = replica_urls(args.base_url)
    if args.normalize:
        flags["normalize"] = args.normalize
    return apply_flags(config.with_overrides(flags), args)


def run_rerank(args: argparse.Namespace) -> int:
    positive(args, "top_n", "concurrency", "batch_size")
    settings = Settings(
        args.top_n, args.score_threshold, args.concurrency, args.batch_size, args.fail_fast, args.instruction
    )
    if args.queries:
        if len(args.inputs) > 1:
            raise UserError("with --queries, give at most one DOCS file")
        queries = parse_queries(Source(args.queries))
        if not queries:
            raise UserError(f"{args.queries} holds no queries")
        shared = []
        if args.inputs:
            source = Source(args.inputs[0])
            shared = [doc for doc, _ in iter_documents(source, detect_format(source, args.docs_format))]
        elif any(query.documents is None for query in queries):
            raise UserError('give a DOCS file, or "documents" on every line of the queries file')
        reranker = load_reranker(reranker_config(args))
        writer = Writer(args.format, many=True, out=sys.stdout)
        progress = Progress(sys.stderr, show_progress(args), "queries")
        failed = asyncio.run(rerank_many(reranker, queries, shared, settings, writer, progress))
        return 1 if failed else 0
    if len(args.inputs) != 2:
        raise UserError('expected a QUERY and a DOCS file, e.g. rerank "my question" docs.jsonl')
    validate_query(args.inputs[0])  # also when DOCS turns out empty
    source = Source(args.inputs[1])
    fmt = detect_format(source, args.docs_format)
    single: Reranker = load_reranker(reranker_config(args))
    progress = Progress(sys.stderr, show_progress(args), "documents")
    query = Query(text=args.inputs[0])
    outcome = asyncio.run(rerank_stream(single, query, iter_documents(source, fmt), settings, progress))
    Writer(args.format, many=False, out=sys.stdout).result(outcome)
    return 0


def export_onnx(argv: list[str]) -> int:
    try:
        module = importlib.import_module("rerank_core.cli.export_onnx")
    except ModuleNotFoundError as error:
        raise UserError(f"export-onnx is not available in this installation ({error})") from None
    command: Callable[[Sequence[str]], int] = module.main
    return command(argv)


def guarded(command: Callable[[], int]) -> int:
    """Run a command; map every expected failure to one line on stderr and an exit code."""
    try:
        return command()
    except (UserError, ConfigurationError, InvalidInputError) as error:
        print(f"rerank: error: {describe(error)}", file=sys.stderr)
        return 2
    except RerankError as error:
        print(f"rerank: failed: {describe(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # only before the handler is installed
        return 130
    except BrokenPipeError:  # `rerank ... | head`: the reader left; not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    INTERRUPT.install()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] == "eval":
        from rerank_core.cli.evaluate import run_eval

        return guarded(lambda: run_eval(arguments[1:]))
    if arguments and arguments[0] == "export-onnx":
        return guarded(lambda: export_onnx(arguments[1:]))
    args = build_parser().parse_args(arguments)
    setup_logging(args.verbose)
    return guarded(lambda: run_rerank(args))


if __name__ == "__main__":
    sys.exit(main())
