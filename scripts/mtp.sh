#!/usr/bin/env bash
# Runs the `mtp` tool from a release build, installing system packages and
# building first when needed. Usage: scripts/mtp.sh <subcommand> [args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift build -c release --product mtp >&2
exec .build/release/mtp "$@"
