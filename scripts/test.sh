#!/usr/bin/env bash
# Set up and run the test suite (see README.md). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh tests
exec .venv/bin/python -m pytest -q "$@"
