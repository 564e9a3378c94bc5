#!/usr/bin/env bash
# One sitting of the README's generation tables: `mtp bench generate --json` (default
# --repeats) on the default checkpoint, greedy and sampled (T=1, top-p 0.9), with the
# CPU's own kernels and with AVX2 emulated (OpenBLAS Haswell kernels, oneDNN capped at AVX2, the avx2 row
# kernel), three runs of each alternating, and the medians; then the same for a byte-level
# checkpoint of real text (greedy, --prompt-length 32) when one is given.
# Usage: scripts/bench/generation-sitting.sh [DEFAULT_CKPT] [TEXT_CKPT] [OUT_DIR]
#   DEFAULT_CKPT  default runs/default/checkpoint.safetensors (`mtp train` writes it)
#   TEXT_CKPT     e.g. runs/text/checkpoint.safetensors (`mtp train --data FILE --out runs/text`)
set -uo pipefail
cd "$(dirname "$0")/../.."
default=${1:-runs/default/checkpoint.safetensors}
text=${2:-}
out=${3:-/tmp/mtp-generation-sitting}
mkdir -p "$out"
bash scripts/ensure-deps.sh
swift build -c release --product mtp >&2 || exit 1
mtp=.build/release/mtp
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"

# run NAME KIND CHECKPOINT ARGS...: one bench run with the CPU's kernels (KIND=native) or AVX2 emulated.
run() {
  local name=$1 kind=$2 ckpt=$3; shift 3
  if [ "$kind" = avx2 ]; then
    OPENBLAS_CORETYPE=Haswell DNNL_MAX_CPU_ISA=AVX2 MTP_ROW_KERNEL=avx2 $mtp bench generate --checkpoint "$ckpt" --json "$@" > "$out/$name.log" 2>&1
  else
    $mtp bench generate --checkpoint "$ckpt" --json "$@" > "$out/$name.log" 2>&1
  fi
}

# summary PREFIX: the medians over PREFIX-*.log of every drafting depth count's speed-up.
summary() {
  python3 - "$out" "$1" <<'EOF'
import glob, json, statistics, sys
out, prefix = sys.argv[1], sys.argv[2]
runs = [json.loads(open(f).read().strip().splitlines()[-1]) for f in sorted(glob.glob(f"{out}/{prefix}-*.log"))]
for i, first in enumerate(runs[0]["by_draft_depths"]):
    each = [r["by_draft_depths"][i] for r in runs]
    speedups = [e["speedup"] for e in each]
    acc = [round(a, 3) if a is not None else None for a in first["acceptance"]]
    same = [e["identical"] for e in each]
    print(f"{prefix}: depths {first['draft_depths']}: speed-up median {statistics.median(speedups):.2f} "
          f"(runs {', '.join(f'{s:.2f}' for s in speedups)}), acceptance {acc}, "
          f"tokens/forward {first['tokens_per_forward']:.2f}, identical {same}, kernel {first['row_kernel']}/{first['blas_core']}")
EOF
}

for i in 1 2 3; do
  for kind in native avx2; do
    run "greedy-$kind-$i" $kind "$default"
    run "sampled-$kind-$i" $kind "$default" --temperature 1 --top-p 0.9
  done
done
for mode in greedy sampled; do for kind in native avx2; do summary "$mode-$kind"; done; done
if [ -n "$text" ]; then
  for i in 1 2 3; do for kind in native avx2; do run "text-$kind-$i" $kind "$text" --prompt-length 32; done; done
  for kind in native avx2; do summary "text-$kind"; done
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
