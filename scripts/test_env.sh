#!/usr/bin/env bash
# Create the Python environment the server tests use (the PyPI `openai` client).
#
# Usage: scripts/test_env.sh
#   TEST_VENV   venv directory (default: <repo>/.venv-test)
#   PYTHON      interpreter used to create the venv (default: python3)
#
# Installs scripts/requirements-test.txt. Idempotent: does nothing, quietly, when the venv
# already has the pinned versions. scripts/test.sh runs it before `swift test`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV="${TEST_VENV:-$REPO_ROOT/.venv-test}"
PYTHON="${PYTHON:-python3}"
REQS="$SCRIPT_DIR/requirements-test.txt"

die() { echo "test_env.sh: error: $*" >&2; exit 1; }
log() { echo "test_env.sh: $*" >&2; }

# shellcheck source=scripts/venv_lib.sh
source "$SCRIPT_DIR/venv_lib.sh"

venv_ready "$VENV" "$REQS" openai && exit 0
venv_create "$VENV" "$PYTHON"
log "installing $(grep -v '^#' "$REQS" | tr '\n' ' ')into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2 \
    || die "pip install -r $REQS failed (is PyPI reachable?)"
venv_ready "$VENV" "$REQS" openai || die "installed, but importing openai from $VENV fails"
log "ready: $VENV/bin/python"
