"""Flags and settings every `rerank` subcommand shares."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from rerank_core.cli.common import UserError
from rerank_core.config import RerankerConfig


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """Flags every subcommand that builds rerankers takes."""
    parser.add_argument("--timeout", type=float, help="seconds to wait for a provider's answer (per attempt)")
    parser.add_argument("--max-retries", type=int, help="retries after a failed request (429, 5xx, timeouts)")
    parser.add_argument("--num-threads", type=int, help="CPU threads for the local cross-encoder")
    parser.add_argument(
        "--instruction",
        help="what relevance means, for rerankers that follow instructions (LLM rerankers, vLLM, Fireworks)",
    )
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log retries and fallbacks (-vv: also cache and debug)"
    )


def setup_logging(verbose: int) -> None:
    """Retries (INFO) and fallbacks (WARNING) of the library on stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rerank: %(levelname)s: %(message)s"))
    logger = logging.getLogger("rerank_core")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)


def positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be a positive number")


def apply_flags(config: RerankerConfig, args: argparse.Namespace) -> RerankerConfig:
    """--timeout, --max-retries and --num-threads on top of a config."""
    flags: dict[str, Any] = {}
    if args.timeout is not None:
        flags["timeout"] = args.timeout
    if args.max_retries is not None:
        flags["max_retries"] = args.max_retries
    if args.num_threads is not None:
        if args.num_threads < 1:
            raise UserError("--num-threads must be a positive number")
        if config.provider != "local":
            raise UserError(f"--num-threads applies to the local cross-encoder, not to {config.provider!r}")
        flags["options"] = {**config.options, "num_threads": args.num_threads}
    return config.with_overrides(flags)


def show_progress(args: argparse.Namespace) -> bool:
    return bool(args.progress) if args.progress is not None else sys.stderr.isatty()
