#!/usr/bin/env bash
# One command: set everything up on a fresh machine and run the whole test suite
# (unit tests, then integration tests on the real Docker engine, object store and git).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIPELOCAL_HOME="${PIPELOCAL_HOME:-$(pwd)/.pipelocal}"
bash scripts/setup.sh
mkdir -p test-artifacts
exec .venv/bin/pytest -ra --durations=15 --junitxml=test-artifacts/junit.xml "$@"
