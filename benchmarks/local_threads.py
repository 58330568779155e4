"""Threads x batching, on an idle machine and with one extra busy process, against sentence-transformers.

Each condition runs every variant interleaved round by round (order rotated), ratios are medians of per-round
ratios against sentence-transformers `CrossEncoder.predict` at its defaults (batch size 32, torch's default thread
count) measured in the same rounds. "busy" starts one extra process spinning on one core for the whole condition
(the situation of a service sharing its machine), "idle" has none; the machine's own load average is printed too.

    python -m benchmarks.local_threads            # 40 SciFact abstracts, 3 rounds per condition
    python -m benchmarks.local_threads --quick    # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from benchmarks.local_models import MINILM_DIR, build_minilm_cross_encoder
from benchmarks.local_onnx import ONNX_DIR, build_onnx
from benchmarks.local_speed import cpu_name, load_workload, measure, median_ratio
from rerank_core import OnnxCrossEncoder, TorchCrossEncoder


@contextmanager
def busy_process(enabled: bool) -> Iterator[None]:
    """One extra process that keeps one core busy while the block runs (then it is killed, by its own pid)."""
    if not enabled:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def variants(query: str, docs: list[str]) -> dict[str, Callable[[], object]]:
    import torch
    from sentence_transformers import CrossEncoder

    default_threads = torch.get_num_threads()
    st = CrossEncoder(str(MINILM_DIR), device="cpu", activation_fn=torch.nn.Sigmoid())
    pairs = [(query, d) for d in docs]

    def with_torch_threads(threads: int, run: Callable[[], object]) -> Callable[[], object]:
        def call() -> object:
            torch.set_num_threads(threads)  # torch's pool is per process: set it for each variant's call
            return run()

        return call

    runs: dict[str, Callable[[], object]] = {
        f"sentence-transformers default (bs 32, {default_threads} threads)": with_torch_threads(
            default_threads, lambda: st.predict(pairs, batch_size=32)
        )
    }
    torch_engines: dict[str, tuple[int, dict[str, Any]]] = {  # name: (caller's torch threads, settings)
        "torch engine defaults (one single-threaded worker per core)": (default_threads, {}),
        f"torch engine, num_threads={default_threads} (torch's threads split each batch)": (
            default_threads,
            {"num_threads": default_threads},
        ),
        "torch engine, num_threads=1": (1, {"num_threads": 1}),
        f"torch engine, num_threads={default_threads}, 32-pair batches": (
            default_threads,
            {"num_threads": default_threads, "max_batch_tokens": None},
        ),
    }
    for name, (threads, settings) in torch_engines.items():
        engine = TorchCrossEncoder(str(MINILM_DIR), device="cpu", **settings)
        engine.warm_up()
        runs[name] = with_torch_threads(threads, partial(engine.rerank, query, docs))
    onnx_engines: dict[str, dict[str, Any]] = {
        "ONNX engine defaults (threads unset, workers sleep)": {},
        "ONNX engine, num_threads=1": {"num_threads": 1},
        "ONNX engine, 32-pair batches": {"max_batch_tokens": None},
    }
    for name, settings in onnx_engines.items():
        onnx = OnnxCrossEncoder(str(ONNX_DIR), **settings)
        runs[name] = partial(onnx.rerank, query, docs)
    spinning = SpinningOnnx(str(ONNX_DIR))
    runs["ONNX engine, spin-waiting workers (ONNX Runtime's default)"] = partial(spinning.rerank, query, docs)
    return runs


class SpinningOnnx(OnnxCrossEncoder):
    """The ONNX engine with ONNX Runtime's spin-waiting workers (its own default; ours turns them off)."""

    def _session_options(self) -> Any:
        options = super()._session_options()
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round, 10 documents")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=40)
    args = parser.parse_args()
    import onnxruntime
    import torch

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}\n"
    )
    build_minilm_cross_encoder()
    build_onnx()
    query, docs = load_workload(10 if args.quick else args.docs)
    runs = variants(query, docs)
    baseline = next(iter(runs))
    print("| condition | variant | pairs/s | vs sentence-transformers default |")
    print("|---|---|---|---|")
    for condition in ("idle", "busy"):
        with busy_process(condition == "busy"):
            load_before = os.getloadavg()[0]
            seconds = measure(runs, 1 if args.quick else args.rounds)
            load_after = os.getloadavg()[0]
        for name, times in seconds.items():
            ratio = median_ratio(seconds[baseline], times)
            print(f"| {condition} | {name} | {len(docs) / statistics.median(times):.1f} | {ratio:.2f}× |")
        print(f"| {condition} | load average {load_before:.2f} → {load_after:.2f} | | |")


if __name__ == "__main__":
    main()
