#!/usr/bin/env bash
# Builds and runs one of the fuzz targets that reach past the reader:
#
#   scripts/fuzz/run_target.sh losscase   [SECONDS] [libFuzzer flags...]
#   scripts/fuzz/run_target.sh checkpoint [SECONDS] [libFuzzer flags...]
#
# losscase: FuzzLossCase.swift, `LossCase.evaluate()` of any bytes (SPEC §6 case files),
# seeded with Tests/Fixtures/cases. checkpoint: FuzzCheckpoint.swift, reading and loading
# any bytes as an mtp checkpoint, seeded with scripts/fuzz/corpus/checkpoint (small
# checkpoints of tiny runs). The corpus grows under .build-fuzz/corpus-TARGET; crash
# inputs land in .build-fuzz/crashes-TARGET/.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${1:?losscase or checkpoint}"
seconds="${2:-600}"
shift 2 || shift $#
out=.build-fuzz
case "$target" in
    losscase)
        modules=(Tensors Losses NN MTP LossCases); source=scripts/fuzz/FuzzLossCase.swift
        seeds=Tests/Fixtures/cases; max_len=16384 ;;
    checkpoint)
        modules=(Tensors Losses NN MTP Data Model Training); source=scripts/fuzz/FuzzCheckpoint.swift
        seeds=scripts/fuzz/corpus/checkpoint; max_len=65536 ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
esac
scripts/fuzz/build_modules.sh "${modules[@]}"
libs=()
# Dependents before their dependencies: the linker resolves static libraries left to right.
for ((i = ${#modules[@]} - 1; i >= 0; i--)); do libs+=("$out/modules/lib${modules[i]}.a"); done
# shellcheck disable=SC2046
swiftc -sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 -module-name "Fuzz_$target" \
    -I "$out/modules" -I Sources/CBLAS "$source" "${libs[@]}" $(pkg-config --libs openblas) -o "$out/fuzz-$target"
mkdir -p "$out/corpus-$target" "$out/crashes-$target"
find "$seeds" -name '*.safetensors' -exec cp {} "$out/corpus-$target/" \;
exec "$out/fuzz-$target" "$out/corpus-$target" \
    -dict=scripts/fuzz/safetensors.dict -max_len="$max_len" -max_total_time="$seconds" \
    -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=3072 \
    -artifact_prefix="$out/crashes-$target/" -print_final_stats=1 "$@"
