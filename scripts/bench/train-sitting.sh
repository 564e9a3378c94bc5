#!/usr/bin/env bash
# The README's "Training throughput" table in one sitting: `mtp bench train` (default GEMM
# engine, then MTP_GEMM=openblas) and scripts/bench/torch_train.py (PyTorch eager)
# alternating at the three sizes, ROUNDS rounds each (5 at small, 4 at medium, 3 at large),
# then one `--recompute` run
# per size, and one `torch.compile` run per size at the end. Medians are printed per size; every run's JSON is
# kept in OUT_DIR, with the median of the per-round ratios (adjacent runs see the same
# load). PyTorch parts are skipped when torch is not installed.
# Usage: scripts/bench/train-sitting.sh [OUT_DIR]
# ISA=avx2 runs both sides on their AVX2 code paths on an AVX-512 host (a stand-in for the
# AVX2 hosts, not a measurement of one): OpenBLAS Haswell kernels, oneDNN capped at AVX2
# (DNNL_MAX_CPU_ISA, read by ours and by PyTorch's), our C kernels' avx2 variants, ATen's
# avx2 kernels and MKL's AVX2 code (MKL_ENABLE_INSTRUCTIONS). COMPILE=0 skips torch.compile.
set -uo pipefail
if [ "${ISA:-}" = avx2 ]; then
  export OPENBLAS_CORETYPE=Haswell DNNL_MAX_CPU_ISA=AVX2 MTP_ROW_KERNEL=avx2 MTP_ATTENTION_KERNEL=avx2 \
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
fi
cd "$(dirname "$0")/../.."
out=${1:-/tmp/mtp-train-sitting}
mkdir -p "$out"
bash scripts/ensure-deps.sh
swift build -c release --product mtp >&2 || exit 1
mtp=.build/release/mtp
have_torch=0; python3 -c "import torch" 2>/dev/null && have_torch=1
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)${ISA:+, ISA=$ISA}"
[ $have_torch = 1 ] && echo "== torch $(python3 -c 'import torch; print(torch.__version__)')"
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(round(statistics.median(v)) if v else "-")' "$@"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1]).get(sys.argv[1], ""))' "$1"; }
for size in small medium large; do
  case $size in small) steps=30; rounds=5;; medium) steps=5; rounds=4;; large) steps=3; rounds=3;; esac
  swift_tps=(); openblas_tps=(); torch_tps=(); shares=()
  for r in $(seq "$rounds"); do
    $mtp bench train --size $size --steps $steps --json > "$out/swift-$size-$r.json" 2>/dev/null
    swift_tps+=("$(field tokens_per_second < "$out/swift-$size-$r.json")"); shares+=("$(field gemm_fraction < "$out/swift-$size-$r.json")")
    engine=$(field gemm_engine < "$out/swift-$size-$r.json")
    MTP_GEMM=openblas $mtp bench train --size $size --steps $steps --json > "$out/swift-openblas-$size-$r.json" 2>/dev/null
    openblas_tps+=("$(field tokens_per_second < "$out/swift-openblas-$size-$r.json")")
    if [ $have_torch = 1 ]; then
      python3 scripts/bench/torch_train.py --size $size --steps $steps > "$out/torch-$size-$r.json" 2>/dev/null
      torch_tps+=("$(field tokens_per_second < "$out/torch-$size-$r.json")")
    fi
    echo "$size round $r: swift ${swift_tps[-1]} tokens/s ($engine, GEMM share ${shares[-1]}), swift openblas ${openblas_tps[-1]} tokens/s, torch eager ${torch_tps[-1]:-} tokens/s"
  done
  $mtp bench train --size $size --steps $steps --recompute --json > "$out/swift-$size-recompute.json" 2>/dev/null
  echo "$size --recompute: $(field tokens_per_second < "$out/swift-$size-recompute.json") tokens/s, peak $(field peak_bytes < "$out/swift-$size-recompute.json") B (without: $(field peak_bytes < "$out/swift-$size-1.json") B)"
  [ $have_torch = 1 ] && echo "$size torch peak RSS growth $(field peak_rss_growth_bytes < "$out/torch-$size-1.json") B"
  ratios=(); openblas_ratios=()
  for i in "${!torch_tps[@]}"; do
    ratios+=("$(python3 -c "print(${swift_tps[$i]} / ${torch_tps[$i]})")")
    openblas_ratios+=("$(python3 -c "print(${openblas_tps[$i]} / ${torch_tps[$i]})")")
  done
  echo "$size per-round ratios: $(printf '%.2f ' "${ratios[@]}")(openblas: $(printf '%.2f ' "${openblas_ratios[@]}"))"
  echo "== $size medians: swift $(median "${swift_tps[@]}") tokens/s ($engine), swift openblas $(median "${openblas_tps[@]}") tokens/s, torch eager $(median "${torch_tps[@]}") tokens/s, per-round ratio $(python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(round(statistics.median(v), 2) if v else "-")' "${ratios[@]}"), GEMM share $(python3 -c 'import sys,statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]), 2))' "${shares[@]}")"
done
# torch.compile last, so its compilation (minutes of both cores) never sits between the
# alternating runs (in an earlier sitting the large size's first Swift run, right after the
# medium compile, was the slowest of all): it compiles in the 5 warm-up steps; skipped when
# it fails or takes over 15 minutes.
if [ $have_torch = 1 ] && [ "${COMPILE:-1}" != 0 ]; then
  for size in small medium large; do
    case $size in small) steps=30;; medium) steps=5;; large) steps=3;; esac
    timeout 900 python3 scripts/bench/torch_train.py --size $size --steps $steps --warmup 5 --compile > "$out/torch-compile-$size.json" 2>/dev/null
    echo "$size torch.compile: $(field tokens_per_second < "$out/torch-compile-$size.json" 2>/dev/null) tokens/s"
  done
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
