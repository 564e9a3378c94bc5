#!/usr/bin/env bash
# One benchmark sitting: every figure the README's tables quote, in one run on a
# quiet machine, Swift and PyTorch side by side. PyTorch parts are skipped when
# torch is not installed (it is never needed by the build or the tests).
# Usage: scripts/bench/sitting.sh [OUT_DIR]   (writes OUT_DIR/*.log, prints a summary)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/mtp-sitting}
mkdir -p "$out"
bash scripts/ensure-deps.sh
swift build -c release --product mtp >&2 || exit 1
mtp=.build/release/mtp
have_torch=0; python3 -c "import torch" 2>/dev/null && have_torch=1
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"
$mtp bench matmul --json > "$out/matmul.log" 2>&1; grep matmul "$out/matmul.log"
for loss in fused masked chunked; do  # one loss, no MTP: the cross-entropy family alone
  $mtp bench loss --loss "$loss" --tokens 2048 --hidden 512 --vocab 32000 --depths 0 --json > "$out/ce-$loss.log" 2>&1
  echo "ce $loss (N=2048 H=512 V=32000): $(tail -1 "$out/ce-$loss.log")"
done
for loss in fused masked chunked; do
  $mtp bench loss --loss "$loss" --json > "$out/loss-$loss.log" 2>&1; echo "loss $loss: $(tail -1 "$out/loss-$loss.log")"
done
[ $have_torch = 1 ] && { python3 scripts/bench/torch_mtp_loss.py > "$out/torch-loss.log" 2>&1; echo "torch loss: $(tail -1 "$out/torch-loss.log")"; }
$mtp train --out "$out/run" --overwrite --json > "$out/train.log" 2>&1; echo "train: $(tail -1 "$out/train.log")"
$mtp train --steps 100 --eval-every 1000 --out "$out/run-throughput" --overwrite --json > "$out/train-100.log" 2>&1
echo "swift train 100 steps: $(tail -1 "$out/train-100.log")"
[ $have_torch = 1 ] && { python3 scripts/bench/torch_train.py --steps 100 > "$out/torch-train.log" 2>&1; echo "torch train: $(tail -1 "$out/torch-train.log")"; }
for size in small medium large; do  # the training step at three sizes, both implementations, alternating
  $mtp bench train --size "$size" --json > "$out/bench-train-$size.log" 2>&1
  echo "swift bench train $size: $(tail -1 "$out/bench-train-$size.log")"
  [ $have_torch = 1 ] && { python3 scripts/bench/torch_train.py --size "$size" --steps 10 > "$out/torch-train-$size.log" 2>&1
    echo "torch train $size: $(tail -1 "$out/torch-train-$size.log")"; }
  $mtp bench train --size "$size" --recompute --json > "$out/bench-train-$size-recompute.log" 2>&1
  echo "swift bench train $size --recompute: $(tail -1 "$out/bench-train-$size-recompute.log")"
  # torch.compile: compilation happens in the 5 warm-up steps; skipped when it fails or takes over 15 minutes.
  [ $have_torch = 1 ] && { timeout 900 python3 scripts/bench/torch_train.py --size "$size" --steps 10 --warmup 5 --compile \
      > "$out/torch-compile-$size.log" 2>&1; echo "torch.compile train $size: $(tail -1 "$out/torch-compile-$size.log")"; }
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
