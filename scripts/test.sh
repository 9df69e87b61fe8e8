#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: fetches the models the tests use (the default
# model and Gemma 3 270M) and creates the Python environment of the server tests (.venv-test
# with the openai client), all idempotent, then builds and runs the tests in release mode
# (numeric tests are too slow in debug).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
scripts/setup.sh gemma
scripts/test_env.sh
swift test -c release "$@"
