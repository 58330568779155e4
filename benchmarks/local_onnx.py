"""ONNX Runtime engine vs the torch engine and sentence-transformers, same MiniLM-L6 weights.

Speed (interleaved rounds, median of per-round ratios, baseline sentence-transformers `CrossEncoder.predict`
bs 32 in the same rounds), agreement (ONNX fp32 vs torch, int8 vs fp32), cold start (new process to first
score), peak memory for 1,000 documents, and the size of a fresh `pip install "rerank-core[onnx]"` environment.

    python -m benchmarks.local_onnx                    # speed + agreement + cold start + memory
    python -m benchmarks.local_onnx --env-size         # also build a temp venv and measure it (needs PyPI)
    python -m benchmarks.local_onnx --quick            # smoke run
    python -m benchmarks.local_onnx --cold-only --cold-docs 1   # start-up alone: new process to one score
    python -m benchmarks.local_onnx --env-size-only    # only the fresh-venv size and its cold start
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks.local_models import MINILM_DIR, MODELS_DIR, build_minilm_cross_encoder
from benchmarks.local_speed import cpu_name, kendall_tau, load_workload, measure, median_ratio, top_k

ONNX_DIR = MODELS_DIR / "minilm-l6-cross-encoder-onnx"
REPO = Path(__file__).resolve().parents[1]


def build_onnx() -> Path:
    """Export the benchmark MiniLM with the real `rerank export-onnx --int8` code, once."""
    if not (ONNX_DIR / "onnx" / "model_int8.onnx").exists():
        from rerank_core.cli.export_onnx import main

        if main([str(build_minilm_cross_encoder()), str(ONNX_DIR), "--int8"]) != 0:
            raise SystemExit("export failed")
    return ONNX_DIR


def speed(query: str, docs: list[str], rounds: int) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    from rerank_core import OnnxCrossEncoder, TorchCrossEncoder

    st = CrossEncoder(str(MINILM_DIR), device="cpu", activation_fn=torch.nn.Sigmoid())
    engines = {
        "torch engine fp32": TorchCrossEncoder(str(MINILM_DIR), device="cpu"),
        "ONNX engine fp32": OnnxCrossEncoder(str(ONNX_DIR)),
        "ONNX engine int8": OnnxCrossEncoder(str(ONNX_DIR), quantize="int8"),
    }
    variants: dict[str, Callable[[], object]] = {
        "sentence-transformers predict (bs 32)": partial(st.predict, [(query, d) for d in docs], batch_size=32)
    }
    variants.update({name: partial(engine.rerank, query, docs) for name, engine in engines.items()})
    seconds = measure(variants, rounds)
    baseline = seconds["sentence-transformers predict (bs 32)"]
    print("| variant | pairs/s | vs sentence-transformers | vs torch engine fp32 |")
    print("|---|---|---|---|")
    for name, times in seconds.items():
        vs_st, vs_torch = median_ratio(baseline, times), median_ratio(seconds["torch engine fp32"], times)
        print(f"| {name} | {len(docs) / statistics.median(times):.1f} | {vs_st:.2f}× | {vs_torch:.2f}× |")
    print(f"per-round seconds: { {name: [round(t, 2) for t in times] for name, times in seconds.items()} }")

    want = engines["torch engine fp32"].predict_logits(query, docs)
    fp32 = engines["ONNX engine fp32"].predict_logits(query, docs)
    int8 = engines["ONNX engine int8"].predict_logits(query, docs)
    same = sorted(range(len(docs)), key=lambda i: -want[i]) == sorted(range(len(docs)), key=lambda i: -fp32[i])
    print(
        f"\nONNX fp32 vs torch engine: max |Δlogit| {max(abs(a - b) for a, b in zip(fp32, want, strict=True)):.1e}, "
        f"identical ranking: {same}"
    )
    print(
        f"ONNX int8 vs ONNX fp32: Kendall τ {kendall_tau(fp32, int8):.3f}, top-10 overlap "
        f"{len(top_k(fp32, 10) & top_k(int8, 10))}/10, max |Δlogit| "
        f"{max(abs(a - b) for a, b in zip(fp32, int8, strict=True)):.3f} "
        f"(fp32 logits span {max(fp32) - min(fp32):.3f})\n"
    )


# The floor a cold start cannot beat: onnxruntime and tokenizers alone, the same model file and pairs, no library.
RAW_ONNX = """
import numpy, onnxruntime, tokenizers
tokenizer = tokenizers.Tokenizer.from_file('{onnx}/tokenizer.json')
tokenizer.enable_truncation(512)
tokenizer.enable_padding()
session = onnxruntime.InferenceSession('{onnx}/onnx/model.onnx', providers=['CPUExecutionProvider'])
pairs = tokenizer.encode_batch([(query, d) for d in docs])
feeds = {{'input_ids': [p.ids for p in pairs], 'attention_mask': [p.attention_mask for p in pairs],
         'token_type_ids': [p.type_ids for p in pairs]}}
wanted = {{i.name for i in session.get_inputs()}}
session.run(None, {{k: numpy.array(v, dtype=numpy.int64) for k, v in feeds.items() if k in wanted}})
"""

COLD = {
    "onnxruntime + tokenizers alone (baseline)": RAW_ONNX,
    "ONNX engine": "from rerank_core import load_reranker\n"
    "load_reranker('local:{onnx}', options={{'engine': 'onnx'}}).rerank(query, docs)",
    "torch engine": "from rerank_core import load_reranker\n"
    "load_reranker('local:{torch}', options={{'engine': 'torch'}}).rerank(query, docs)",
    "sentence-transformers": "from sentence_transformers import CrossEncoder\n"
    "CrossEncoder('{torch}', device='cpu').predict([(query, d) for d in docs])",
}


BASELINE = "onnxruntime + tokenizers alone (baseline)"


def cold_start(
    query: str, docs: list[str], runs: int, python: str, names: tuple[str, ...] = tuple(COLD), n_docs: int = 10
) -> None:
    """Wall time of a new process that imports, loads the model and scores `n_docs` documents, then exits.
    With one document the time is almost all start-up; with ten abstracts, scoring them is part of it."""
    prelude = f"import json\nquery, docs = json.loads({json.dumps(json.dumps([query, docs[:n_docs]]))})\n"
    timings: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(runs):
        for name in names:
            code = prelude + COLD[name].format(onnx=ONNX_DIR, torch=MINILM_DIR)
            start = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, capture_output=True, env=bench_env())
            timings[name].append(time.perf_counter() - start)
    print(f"cold start, new process to first score of {n_docs} documents ({python}), median of {runs}:")
    baseline = timings.get(BASELINE)
    for name, times in timings.items():
        versus = f", {median_ratio(times, baseline):.2f}× the baseline" if baseline and name != BASELINE else ""
        print(f"- {name}: {statistics.median(times):.2f} s{versus} (runs: {', '.join(f'{t:.2f}' for t in times)})")


PEAK = """
import json, re, sys
query, docs = json.load(open(sys.argv[1]))
kind = sys.argv[2]
if kind == "sentence-transformers":
    from sentence_transformers import CrossEncoder
    CrossEncoder("{torch}", device="cpu").predict([(query, d) for d in docs], batch_size=32)
else:
    from rerank_core import load_reranker
    engine, options = {{"torch engine": ("torch", {{}}), "ONNX engine fp32": ("onnx", {{}}),
                       "ONNX engine int8": ("onnx", {{"quantize": "int8"}})}}[kind]
    model = "{onnx}" if engine == "onnx" else "{torch}"
    load_reranker("local:" + model, options={{"engine": engine, **options}}).rerank(query, docs)
# VmHWM (peak resident set) starts afresh at exec; ru_maxrss would carry over the parent's peak.
print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
"""


def peak_memory(query: str, docs: list[str]) -> None:
    code = PEAK.format(torch=MINILM_DIR, onnx=ONNX_DIR)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump([query, docs], handle)
    print(f"peak memory (VmHWM, peak resident set of a new process scoring {len(docs)} documents):")
    try:
        for kind in ("sentence-transformers", "torch engine", "ONNX engine fp32", "ONNX engine int8"):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", code, handle.name, kind], check=True, capture_output=True, text=True,
                env=bench_env(),
            )  # fmt: skip
            rss_mb = int(out.stdout.split()[-1]) / 1024
            print(f"- {kind}: {rss_mb:.0f} MB ({time.perf_counter() - start:.0f} s)")
    finally:
        os.unlink(handle.name)


def env_size() -> None:
    """Size of a fresh venv with `pip install "rerank-core[onnx]"` (from this checkout), and of a bare venv."""
    with tempfile.TemporaryDirectory() as scratch:
        bare, full = Path(scratch) / "bare", Path(scratch) / "onnx"
        for venv in (bare, full):
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(full / "bin" / "pip"), "install", "-q", f"{REPO / 'packages' / 'rerank-core'}[onnx]"],
            check=True, capture_output=True,
        )  # fmt: skip
        sizes = {venv.name: du(venv) for venv in (bare, full)}
        compiled = du(full) - du(full, bytecode=False)
        site = next((full / "lib").glob("python*/site-packages"))
        biggest = sorted(((du(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)[:6]
        cold_start(*load_workload(10), runs=5, python=str(full / "bin" / "python"), names=(BASELINE, "ONNX engine"))
    print(
        f"fresh `pip install rerank-core[onnx]` venv: {sizes['onnx'] / 1e6:.0f} MB "
        f"(a bare venv with pip and setuptools: {sizes['bare'] / 1e6:.0f} MB, so the install adds "
        f"{(sizes['onnx'] - sizes['bare']) / 1e6:.0f} MB; {compiled / 1e6:.0f} MB of it is the bytecode pip compiles, "
        f"which `pip install --no-compile` skips); largest: "
        + ", ".join(f"{name} {size / 1e6:.0f} MB" for size, name in biggest)
    )


def du(path: Path, bytecode: bool = True) -> int:
    return sum(
        f.stat().st_size
        for f in path.rglob("*")
        if f.is_file() and not f.is_symlink() and (bytecode or "__pycache__" not in f.parts)
    )


def bench_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round, 30 documents, 100 for memory")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--memory-docs", type=int, default=1000)
    parser.add_argument("--env-size", action="store_true", help="also measure a fresh [onnx] venv (uses PyPI)")
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory measurement")
    parser.add_argument("--cold-only", action="store_true", help="only the cold-start measurement")
    parser.add_argument("--cold-docs", type=int, default=10, help="documents scored by the cold-start process")
    parser.add_argument("--env-size-only", action="store_true", help="only the fresh [onnx] venv (uses PyPI)")
    args = parser.parse_args()
    import onnxruntime
    import sentence_transformers
    import torch
    import transformers

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()}; onnxruntime "
        f"{onnxruntime.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}\n"
    )
    build_minilm_cross_encoder()
    build_onnx()
    if args.memory_only:
        peak_memory(*load_workload(args.memory_docs))
        return
    if args.env_size_only:
        env_size()
        return
    if args.cold_only:
        cold_start(*load_workload(args.cold_docs), args.cold_runs, sys.executable, n_docs=args.cold_docs)
        return
    query, docs = load_workload(30 if args.quick else args.docs)
    speed(query, docs, 1 if args.quick else args.rounds)
    cold_start(query, docs, 1 if args.quick else args.cold_runs, sys.executable, n_docs=args.cold_docs)
    print(f"load average {os.getloadavg()}\n")
    peak_memory(*load_workload(100 if args.quick else args.memory_docs))
    if args.env_size:
        env_size()
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
