"""The code blocks of the docs and READMEs, and the runner that executes one page's blocks as written.

A page's fenced blocks run in order, like a notebook: ```python blocks share one namespace, ```bash blocks run in
bash in the same working directory, ```console blocks run each `$ ` command (a `cat FILE` whose file does not exist
yet writes the shown content to it). A comment just before a block changes what happens to it:

- `<!-- not-run: REASON -->`: the block is not run (it installs into another environment, needs a GPU, ...);
  the reason is required.
- `<!-- file: NAME -->`: the block is written to NAME in the working directory before the page runs (a config
  file the page's code loads).

Run as `python -m tests.support.doc_blocks PAGE` inside the working directory; the test module sets up the
environment (emulators, the tiny model, the `pip` stand-in, see `tests/docs/test_doc_blocks.py`). After the last
block, the Python code in `$DOC_CHECKS` (if set) runs in the page's namespace: the test's assertions on what the
examples produced.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(
    r"(?:<!--\s*(?P<directive>[\w-]+)\s*:?\s*(?P<argument>[^>]*?)\s*-->\n)?^```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$",
    re.S | re.M,
)
RUN_LANGUAGES = ("python", "bash", "console")
"""Languages whose blocks are executed; other blocks (toml, yaml, text) are data unless a `file:` names them."""
DIRECTIVES = ("not-run", "file")


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    code: str
    line: int
    """Line of the block's first code line in the page (1-based)."""
    directive: str = ""
    argument: str = ""

    @property
    def label(self) -> str:
        return f"{self.page}:{self.line} ({self.lang})"


def pages() -> list[str]:
    """Every page whose blocks are run, relative to the repository root."""
    found = [
        *sorted(ROOT.glob("docs/*.md")),
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *sorted(ROOT.glob("packages/*/README.md")),
    ]
    return [str(path.relative_to(ROOT)) for path in found]


def blocks(page: str) -> list[Block]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return [
        Block(
            page=page,
            lang=match["lang"],
            code=match["code"].rstrip("\n"),
            line=text.count("\n", 0, match.start("code")) + 1,
            directive=match["directive"] or "",
            argument=match["argument"] or "",
        )
        for match in FENCE.finditer(text)
    ]


def console_commands(code: str) -> list[tuple[str, bool]]:
    """The `$ ` commands of a console transcript (continuation lines joined), each with whether it may fail:
    a transcript shows a failing command by its error output or by an `echo $?` after it."""
    commands: list[tuple[str, str]] = []
    lines = iter(code.splitlines())
    for line in lines:
        if not line.startswith("$ "):
            if commands:
                commands[-1] = (commands[-1][0], commands[-1][1] + line + "\n")
            continue
        command = line[2:]
        while command.endswith("\\"):
            command = command + "\n" + next(lines, "")
        commands.append((command, ""))
    shown = []
    for number, (command, output) in enumerate(commands):
        following = commands[number + 1][0] if number + 1 < len(commands) else ""
        may_fail = following == "echo $?" or re.search(r"\berror\b|\bfailed\b|interrupted", output) is not None
        shown.append((command, may_fail))
    return shown


def console_files(code: str) -> dict[str, str]:
    """`$ cat NAME` followed by its content: the files a transcript shows."""
    files: dict[str, str] = {}
    for match in re.finditer(r"^\$ cat (\S+)\n(.*?)(?=^\$ |\Z)", code, re.S | re.M):
        files[match[1]] = match[2]
    return files


def run_bash(code: str, *, label: str) -> None:
    sys.stdout.flush()
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], check=False)
    if done.returncode != 0:
        raise SystemExit(f"{label}: bash exited with {done.returncode}")


def run_page(page: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    page_blocks = blocks(page)
    for block in page_blocks:  # files a page shows are there before any block runs, as on the reader's disk
        if block.directive == "file":
            Path(block.argument).write_text(block.code + "\n", encoding="utf-8")
    for block in page_blocks:
        if block.directive in ("not-run", "file") or block.lang not in RUN_LANGUAGES:
            continue
        print(f"--- {block.label}", flush=True)
        if block.lang == "python":
            # Padding keeps the page's own line numbers in tracebacks.
            exec(compile("\n" * (block.line - 1) + block.code, str(ROOT / page), "exec"), namespace)
        elif block.lang == "bash":
            run_bash(block.code, label=block.label)
        elif block.lang == "console":
            for name, content in console_files(block.code).items():
                if not Path(name).exists():
                    Path(name).write_text(content, encoding="utf-8")
            for command, may_fail in console_commands(block.code):
                if command.startswith("cat ") or command == "echo $?":
                    continue  # shown files were written above; an exit code is what may_fail reads
                sys.stdout.flush()
                done = subprocess.run(["bash", "-c", command], check=False)
                if done.returncode != 0 and not may_fail:
                    raise SystemExit(f"{block.label}: `{command}` exited with {done.returncode}")
    checks = os.environ.get("DOC_CHECKS")
    if checks:
        exec(compile(checks, f"checks of {page}", "exec"), namespace)
    return namespace


if __name__ == "__main__":
    run_page(sys.argv[1])
