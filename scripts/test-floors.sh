#!/usr/bin/env bash
# Run the framework packages' tests against the lowest framework versions their pyproject.toml files declare
# (every `>=` floor of langchain-core, langchain-classic, llama-index-core and haystack-ai, pinned with `==`),
# in a second venv, so a declared floor is one that was tested. Called by scripts/check.sh; about 2-3 minutes
# the first time, seconds once .venv-floors exists.
set -euo pipefail
cd "$(dirname "$0")/.."

export HAYSTACK_TELEMETRY_ENABLED=False HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

PYTHON="${PYTHON:-python3}"
VENV="${FLOORS_VENV:-.venv-floors}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

# `name>=X` -> `name==X` for the frameworks, read from the packages' own metadata.
mapfile -t FLOORS < <("$VENV/bin/python" - <<'PY'
import re
import tomllib

FRAMEWORKS = {"langchain-core", "langchain-classic", "llama-index-core", "haystack-ai"}
for package in ("rerank-langchain", "rerank-llamaindex", "rerank-haystack"):
    with open(f"packages/{package}/pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    requirements = project["dependencies"] + sum(project.get("optional-dependencies", {}).values(), [])
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][A-Za-z0-9.]*)", requirement.replace(" ", ""))
        if match and match[1] in FRAMEWORKS:
            print(f"{match[1]}=={match[2]}")
PY
)
echo "framework floors: ${FLOORS[*]}"

"$VENV/bin/python" -m pip install -q "torch==2.13.0"  # the CPU build, as in check.sh
"$VENV/bin/python" -m pip install -q "${FLOORS[@]}" pytest pytest-asyncio \
    -e "packages/rerank-core[local]" -e "packages/rerank-langchain[classic]" -e packages/rerank-llamaindex \
    -e packages/rerank-haystack
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m pytest -q -p no:cacheprovider packages/rerank-langchain packages/rerank-llamaindex \
    packages/rerank-haystack "$@"
