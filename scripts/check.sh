#!/usr/bin/env bash
# Install everything into .venv from scratch (or update it), then run ruff, mypy, the whole test suite and the
# release check. This is the command the README gives and the one CI runs.
#
# `bash scripts/check.sh --quick` is the edit loop: ruff, the format check, mypy and the tests not marked `slow`
# or `integration`, in the .venv a full run made, with no install, no floors and no release build.
set -euo pipefail
cd "$(dirname "$0")/.."

export HAYSTACK_TELEMETRY_ENABLED=False HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ "${1:-}" = "--quick" ]; then
    shift
    [ -x .venv/bin/pytest ] || { echo "no .venv yet: run 'bash scripts/check.sh' once first" >&2; exit 2; }
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    exec .venv/bin/pytest -m "not slow and not integration" "$@"
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
VENV_PY=.venv/bin/python

# --- install: pinned by constraints.txt (re-pin with scripts/lock.sh) ---
# Pin torch first: it is the CPU build; a loose requirement would pull a multi-GB CUDA build.
"$VENV_PY" -m pip install -q "torch==2.13.0"
"$VENV_PY" -m pip install -q -c constraints.txt -r requirements-dev.txt

# A real Infinity server for tests/integration/test_infinity_server.py. Its pins (numpy 1.26, transformers 4.57)
# clash with .venv, so it gets a venv of its own; torch is pinned first there too. 1-4 min; not [all] (torchvision).
[ -x .venv-infinity/bin/python ] || "$PYTHON" -m venv .venv-infinity
.venv-infinity/bin/python -m pip install -q --upgrade pip
.venv-infinity/bin/python -m pip install -q "torch==2.13.0"
.venv-infinity/bin/python -m pip install -q "infinity-emb[server,torch]==0.0.78"
export RERANK_INFINITY_EMB="$PWD/.venv-infinity/bin/infinity_emb"

# --- static checks ---
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

# --- tests ---
.venv/bin/pytest "$@"
# The framework packages' tests again, on the lowest framework versions they declare (a second venv).
bash scripts/test-floors.sh

# --- release: build all four packages, twine check, install the core wheel in a clean venv, rerank once ---
bash scripts/release.sh
