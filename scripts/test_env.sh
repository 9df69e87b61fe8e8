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

check() {
    [[ -x "$VENV/bin/python" ]] || return 1
    "$VENV/bin/python" - "$REQS" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    if want and version(name.strip()) != want.strip():
        sys.exit(1)
import openai  # noqa: F401
PY
}

check && exit 0

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (install Python 3 or set PYTHON=...)"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create venv $VENV (Debian: apt-get install python3-venv)"
fi
log "installing $(grep -v '^#' "$REQS" | tr '\n' ' ')into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2 \
    || die "pip install -r $REQS failed (is PyPI reachable?)"
check || die "installed, but importing openai from $VENV fails"
log "ready: $VENV/bin/python"
