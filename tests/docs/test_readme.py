"""The README's commands and examples, checked as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
FENCE = re.compile(r"```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)


def fenced(lang: str) -> list[str]:
    return [match["code"] for match in FENCE.finditer(README) if match["lang"] == lang]


def test_every_python_example_compiles() -> None:
    examples = fenced("python")
    assert len(examples) >= 3
    for number, code in enumerate(examples):
        compile(code, f"README.md python block {number}", "exec")


def test_the_first_command_reranks_the_example_file_with_the_local_model(
    tiny_cross_encoder: str, tmp_path: Path
) -> None:
    from tests.support.tiny_models import export_tiny_onnx

    first_block = fenced("bash")[0]
    assert 'rerank-core[onnx]"' in first_block, "the first command installs the ONNX engine"
    model = export_tiny_onnx(tiny_cross_encoder, tmp_path / "onnx-model", int8=False)
    command_line = next(line for line in first_block.splitlines() if line.startswith("rerank "))
    argv = shlex.split(command_line)
    rerank_script = Path(sys.executable).parent / "rerank"
    command = [str(rerank_script)] if rerank_script.exists() else [sys.executable, "-m", "rerank_core.cli"]
    environ = {key: value for key, value in os.environ.items() if not key.startswith("RERANK_")}
    environ["RERANK_LOCAL_MODEL"] = model  # offline: the README's documented override, a folder with an ONNX export

    done = subprocess.run(
        [*command, *argv[1:]], cwd=ROOT, capture_output=True, text=True, env=environ, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    top_n = int(argv[argv.index("--top-n") + 1])
    rows = re.findall(r"^\s*(\d+)\s+\d\.\d+\s+\d+\s", done.stdout, re.M)  # rank, score, index, ...
    assert rows == [str(rank) for rank in range(1, top_n + 1)], done.stdout


def test_the_development_command_is_what_ci_runs() -> None:
    assert "bash scripts/check.sh" in fenced("bash")[-1]
    assert "scripts/check.sh" in (ROOT / ".ci/run").read_text()
