#!/usr/bin/env bash
# Compiles the library modules a fuzz target needs, instrumented for libFuzzer and
# AddressSanitizer, as static libraries under .build-fuzz/modules/ (one swiftc call per
# module, in dependency order, as SwiftPM would but with -sanitize=fuzzer,address).
#
#   scripts/fuzz/build_modules.sh Tensors Losses NN MTP LossCases
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build-fuzz/modules
mkdir -p "$out"
xcc=()
for flag in $(pkg-config --cflags openblas); do xcc+=(-Xcc "$flag"); done
for module in "$@"; do
    lib="$out/lib$module.a"
    # Rebuild only when a source of the module is newer than its library.
    if [[ -f "$lib" && -z "$(find "Sources/$module" -name '*.swift' -newer "$lib" -print -quit)" ]]; then continue; fi
    echo "compiling $module" >&2
    swiftc -sanitize=fuzzer,address -parse-as-library -O -g -swift-version 6 \
        -module-name "$module" -emit-module -emit-module-path "$out/$module.swiftmodule" \
        -emit-library -static -o "$lib" \
        -I "$out" -I Sources/CBLAS "${xcc[@]}" \
        Sources/"$module"/*.swift
done
