#!/usr/bin/env bash
# The README's "Training on text" figures: `mtp train --preset bytes-10min` on the King
# James text (scripts/data/kjv.sh), its held-out bits per byte beside gzip -9 and xz -9 on
# the same held-out bytes (written by --write-held-out).
# Usage: scripts/bench/text.sh [OUT_DIR] [PRESET]   (default /tmp/mtp-text, bytes-10min)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/mtp-text}; preset=${2:-bytes-10min}
mkdir -p "$out"
bash scripts/ensure-deps.sh
swift build -c release --product mtp >&2
[ -e "$out/kjv.txt" ] || bash scripts/data/kjv.sh "$out/kjv.txt"
rm -rf "$out/run" "$out/held-out.txt"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
.build/release/mtp train --data "$out/kjv.txt" --preset "$preset" --write-held-out "$out/held-out.txt" \
  --out "$out/run" --json > "$out/train.log" 2> "$out/train.err"
end=$(date +%s)
python3 - "$out" $((end - start)) <<'PY'
import json, math, subprocess, sys
out, seconds = sys.argv[1], int(sys.argv[2])
run = json.loads(open(f"{out}/train.log").read().strip().split("\n")[-1])
held = open(f"{out}/held-out.txt", "rb").read()
gz = len(subprocess.run(["gzip", "-9", "-c"], input=held, capture_output=True, check=True).stdout)
xz = len(subprocess.run(["xz", "-9", "-c"], input=held, capture_output=True, check=True).stdout)
bpb = run["main_loss"] / math.log(2)
print(f"held-out: {len(held)} bytes; model {bpb:.3f} bits/byte (main CE {run['main_loss']:.4f} nats), "
      f"gzip -9 {8 * gz / len(held):.3f}, xz -9 {8 * xz / len(held):.3f}; wall {seconds} s, "
      f"{run['tokens_per_second']:.0f} tokens/s")
print(json.dumps({"bits_per_byte": bpb, "gzip_bits_per_byte": 8 * gz / len(held), "xz_bits_per_byte": 8 * xz / len(held),
                  "held_out_bytes": len(held), "seconds": seconds, "main_loss": run["main_loss"],
                  "mtp_losses": run.get("mtp_losses"), "tokens_per_second": run["tokens_per_second"]}))
PY
