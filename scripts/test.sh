#!/usr/bin/env bash
# The test command of the README's quick start (and of .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift test "$@"
