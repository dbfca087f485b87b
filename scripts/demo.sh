#!/usr/bin/env bash
# One command: set everything up on a fresh machine and run the demo pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIPELOCAL_HOME="${PIPELOCAL_HOME:-$(pwd)/.pipelocal}"
bash scripts/setup.sh
exec .venv/bin/pipelocal demo "$@"
