#!/usr/bin/env bash
# The test command of the README's quick start (and of .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# OpenBLAS reads OPENBLAS_CORETYPE when it loads, so the test process must start with it
# (the mtp executable re-executes itself instead: BLAS.relaunchWithPreferredCoreTypeIfNeeded).
# Same rule as BLAS.preferredCoreType(cpuinfo:); the tests print the core they run on.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  if has avx512f avx512bw avx512vl avx512dq; then export OPENBLAS_CORETYPE=SkylakeX
  elif has avx2 fma; then export OPENBLAS_CORETYPE=Haswell
  fi
fi
swift test "$@"
