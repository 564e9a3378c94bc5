#!/usr/bin/env bash
# Builds the libFuzzer target for the safetensors reader and runs it.
#
#   scripts/fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
#
# SECONDS defaults to 600. Everything lives under .build-fuzz/ (ignored by
# git): the binary, the corpus (seeded from every .safetensors fixture) and
# any crash artifacts (crashes/).
set -euo pipefail

cd "$(dirname "$0")/../.."
seconds="${1:-600}"
shift || true
out=.build-fuzz
mkdir -p "$out/corpus" "$out/crashes"

# CBLAS is a system module: its modulemap is in Sources/CBLAS, the header and
# the library come from pkg-config.
xcc=()
for flag in $(pkg-config --cflags openblas); do xcc+=(-Xcc "$flag"); done
# shellcheck disable=SC2046
swiftc -sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 \
    -module-name FuzzSafeTensors \
    -I Sources/CBLAS "${xcc[@]}" $(pkg-config --libs openblas) \
    Sources/Tensors/*.swift scripts/fuzz/FuzzSafeTensors.swift \
    -o "$out/fuzz-safetensors"

# Seed the corpus: libFuzzer names corpus files by content hash, so copying
# under the fixture's flattened path is only for a readable first run.
while IFS= read -r -d '' f; do
    cp "$f" "$out/corpus/seed-$(echo "${f#Tests/Fixtures/}" | tr '/' '_')"
done < <(find Tests/Fixtures -name '*.safetensors' -print0)

exec "$out/fuzz-safetensors" "$out/corpus" \
    -dict=scripts/fuzz/safetensors.dict \
    -max_len=8192 \
    -max_total_time="$seconds" \
    -artifact_prefix="$out/crashes/" \
    -print_final_stats=1 \
    "$@"
