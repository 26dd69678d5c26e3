#!/usr/bin/env bash
# The main job on the embedded simulated kernel (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh plot
exec .venv/bin/mglru bench aging --gib 1,16 "$@"
