#!/usr/bin/env bash
# Create .venv (once) and install mglru with the given extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
fi
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
