"""The `rerank eval` report as a terminal table, a quality-vs-latency picture and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, TextIO

from rerank_core.cli.common import UserError


def cells(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows shared by the terminal table and the HTML table."""
    metrics = report["metrics"]
    header = ["system", *metrics, "p50 ms", "p95 ms", "docs sent", "tokens", "cache hits", "failures"]
    rows = []
    for system in report["systems"]:
        latency = system.get("latency_ms", {})
        row = [system["name"], *(f"{system[m]:.4f}" for m in metrics)]
        row += [number(latency.get("p50"), ".1f"), number(latency.get("p95"), ".1f")]
        row += [number(system.get(key), "d") for key in ("documents_sent", "tokens", "cache_hits", "failures")]
        rows.append(row)
    return header, rows


def number(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_table(report: dict[str, Any], out: TextIO) -> None:
    header, rows = cells(report)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    data = report["data"]
    out.write(
        f"{data['name']} ({data['split']}): {data['queries']} queries, "
        f"{data['first_stage']} top {data['depth']} reranked\n"
    )
    for row in [header, *rows]:
        padded = [cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        line = "  ".join(padded)
        out.write(line.rstrip() + "\n")
    out.flush()


def plot_png(report: dict[str, Any]) -> bytes:
    """Quality (the first metric) against median latency per query; the first stage as a dashed line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError:
        raise UserError('--plot needs matplotlib: pip install "rerank-core[eval]"') from None
    metric = report["metrics"][0]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    latencies = [s["latency_ms"]["p50"] for s in report["systems"] if s.get("latency_ms", {}).get("p50") is not None]
    for system in report["systems"]:
        if system["kind"] == "first-stage":
            axes.axhline(system[metric], linestyle="--", color="grey", label=f"{system['name']} (first stage)")
            continue
        latency = system["latency_ms"]["p50"]
        if latency is None:
            continue
        axes.scatter([latency], [system[metric]], s=60, zorder=3)
        axes.annotate(system["name"], (latency, system[metric]), textcoords="offset points", xytext=(6, 6))
    data = report["data"]
    # Seconds once a point passes a second, so ticks read "2.5", not "2500"; a few ticks, never crowded.
    scale, unit = (1000.0, "s") if max(latencies, default=0.0) >= 1000 else (1.0, "ms")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / scale:g}"))
    axes.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    axes.set_xlabel(f"median latency per query ({unit})")
    axes.set_ylabel(metric)
    axes.set_title(f"{data['name']}: {data['queries']} queries, {data['first_stage']} top {data['depth']}")
    # Room right of the slowest point for its label; quality metrics live in 0..1.
    axes.set_xlim(0, 1.6 * max(latencies, default=1.0))
    axes.set_ylim(0, 1.0)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def write_plot(report: dict[str, Any], path: Path) -> None:
    path.write_bytes(plot_png(report))


def provenance(report: dict[str, Any]) -> str:
    """When, how and with what the run scored, as an HTML list."""
    run = report.get("run", {})
    items = [f"date {run.get('date', '?')}, concurrency {run.get('concurrency', '?')}"]
    if run.get("instruction"):
        items.append(f"instruction: {run['instruction']}")
    for system in report["systems"]:
        scorer = system.get("scorer")
        if scorer:
            items.append(f"{system['name']}: " + ", ".join(f"{key} {value}" for key, value in scorer.items()))
    items.append(", ".join(f"{name} {version}" for name, version in report.get("versions", {}).items()))
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def write_html(report: dict[str, Any], path: Path) -> None:
    """One file with the table and, when matplotlib is installed, the picture inlined."""
    header, rows = cells(report)
    try:
        image = base64.b64encode(plot_png(report)).decode("ascii")
        picture = f'<img alt="quality vs latency" src="data:image/png;base64,{image}">'
    except UserError:
        picture = "<p>(install matplotlib for the picture)</p>"
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    data = report["data"]
    title = html.escape(f"rerank eval: {data['name']} ({data['split']})")
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style>"
        f"</head><body><h1>{title}</h1><p>{data['queries']} queries; {html.escape(data['first_stage'])} top "
        f"{data['depth']} reranked. Metrics by ir_measures; a failed query counts as 0.</p>{provenance(report)}"
        f"<table><tr>{head}</tr>{body}</table>{picture}</body></html>\n",
        encoding="utf-8",
    )
