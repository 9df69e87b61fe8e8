#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: fetches the default model (idempotent),
# then builds and runs the tests in release mode (numeric tests are too slow in debug).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
swift test -c release "$@"
