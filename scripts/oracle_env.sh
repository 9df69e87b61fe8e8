#!/usr/bin/env bash
# Create the Python environment of the llama.cpp oracle (fixtures, speed comparison).
#
# Usage: scripts/oracle_env.sh
#   ORACLE_VENV   venv directory (default: <repo>/.venv-oracle)
#   PYTHON        interpreter used to create the venv (default: python3)
#   CMAKE_ARGS    passed to the llama.cpp build (default: -DGGML_NATIVE=ON)
#
# Installs scripts/requirements-oracle.txt (llama-cpp-python is compiled from source:
# 10-20 minutes on 2 cores). Idempotent: does nothing, quietly, when the venv already
# has the pinned versions. Then run e.g.
#   .venv-oracle/bin/python scripts/make_fixtures.py
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV="${ORACLE_VENV:-$REPO_ROOT/.venv-oracle}"
PYTHON="${PYTHON:-python3}"
REQS="$SCRIPT_DIR/requirements-oracle.txt"

die() { echo "oracle_env.sh: error: $*" >&2; exit 1; }
log() { echo "oracle_env.sh: $*" >&2; }

# shellcheck source=scripts/venv_lib.sh
source "$SCRIPT_DIR/venv_lib.sh"

venv_ready "$VENV" "$REQS" llama_cpp gguf numpy && exit 0  # (the build really works)
venv_create "$VENV" "$PYTHON"
command -v cmake >/dev/null 2>&1 || log "warning: cmake not on PATH; pip will use the cmake wheel from PyPI"
log "installing $(grep -v '^#' "$REQS" | tr '\n' ' ')(llama.cpp is compiled: 10-20 min)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON}" "$VENV/bin/python" -m pip install --quiet -r "$REQS" >&2 \
    || die "pip install failed (a C/C++ compiler is required: apt-get install build-essential)"
venv_ready "$VENV" "$REQS" llama_cpp gguf numpy || die "installed, but importing llama_cpp/gguf/numpy from $VENV fails"
log "ready: $VENV/bin/python"
