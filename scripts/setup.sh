#!/usr/bin/env bash
# Installs everything pipelocal needs on a fresh Debian machine with a running Docker engine:
# host packages (git, debootstrap, chromium for the console tests), a virtualenv with pipelocal, and the container images.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PIPELOCAL_HOME="${PIPELOCAL_HOME:-$ROOT/.pipelocal}"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

need_pkgs=()
command -v git >/dev/null || need_pkgs+=(git)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
# headless Chromium and its driver, for the console's browser tests
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v chromedriver >/dev/null || need_pkgs+=(chromium-driver)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  step "installing host packages: ${need_pkgs[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "pipelocal: the Docker engine is not reachable. Start it (for example \`sudo service docker start\`) and run this again." >&2
  exit 2
fi

if [ ! -x .venv/bin/pipelocal ] || [ pyproject.toml -nt .venv/.installed ]; then
  step "creating the virtualenv .venv and installing pipelocal"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch .venv/.installed
fi

step "building the container images if they are missing"
.venv/bin/pipelocal images
