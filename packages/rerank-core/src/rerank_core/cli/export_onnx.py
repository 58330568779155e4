"""`rerank export-onnx MODEL FOLDER [--int8]`: the command line of `rerank_core.local.onnx_export.export`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rerank_core.errors import ConfigurationError
from rerank_core.local.onnx_export import INT8_FILE, OPSET, export


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank export-onnx",
        description="Export a Hugging Face cross-encoder to ONNX for the ONNX engine (engine='onnx').",
    )
    parser.add_argument("model", help="hub id (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2) or model folder")
    parser.add_argument("folder", help="output folder; load it with load_reranker('local:<folder>')")
    parser.add_argument("--int8", action="store_true", help=f"also write a dynamic int8 model ({INT8_FILE})")
    parser.add_argument("--revision", help="hub revision (tag, branch or commit) to export")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument(
        "--no-fuse",
        action="store_true",
        help="write standard ONNX operators only, for runtimes other than ONNX Runtime (slower there)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; 0 on success, 2 with one line on stderr for a user error (bad arguments, a model that
    cannot be found or exported)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        report = export(
            args.model, args.folder, int8=args.int8, revision=args.revision, opset=args.opset, fuse=not args.no_fuse
        )
    except ConfigurationError as exc:  # the model, the folder or the hub: the user's to fix, as in the other commands
        print(f"rerank: error: {exc}", file=sys.stderr)
        return 2
    for line in report:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
