#!/usr/bin/env python3
"""PyTorch side of `mtp bench loss`: the same computation, eager, on CPU.

One measurement = forward + backward of the main cross-entropy plus the MTP loss
over D depths (labels rolled left k+1 times, the last k+1 positions ignored),
all sharing one LM-head weight, with the materialised-logits loss (logits =
h @ W.T, Float32 cross-entropy, sum / N), as NeMo AutoModel's MaskedCrossEntropy
computes it. Prints the median/min time, GFLOP/s counting 6·N·H·V·(D+1), and the
process's peak-RSS growth during the measured steps. Optional: CI never runs it.

Usage: python3 scripts/bench/torch_mtp_loss.py [--tokens 4096 --hidden 1024 --vocab 32000 --depths 2 --repeats 3]
"""
import argparse, json, resource, time

import torch
import torch.nn.functional as F


def rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def current_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return rss_peak_bytes()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--depths", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scaling-factor", type=float, default=0.1)
    a = p.parse_args()
    n, h, v, d = a.tokens, a.hidden, a.vocab, a.depths
    g = torch.Generator().manual_seed(0)
    weight = (torch.randn(v, h, generator=g) * 0.02).requires_grad_()
    main_h = torch.randn(n, h, generator=g).requires_grad_()
    depth_h = [torch.randn(n, h, generator=g).requires_grad_() for _ in range(d)]
    labels = torch.randint(0, v, (n,), generator=g)

    def step():
        for t in [weight, main_h, *depth_h]:
            t.grad = None
        logits = main_h @ weight.T
        loss = F.cross_entropy(logits.float(), labels, reduction="sum") / n
        cur = labels
        mtp = 0.0
        for k in range(d):
            cur = torch.roll(cur, -1, 0).clone()
            cur[-1] = 0
            lab = cur.clone()
            lab[n - min(k + 1, n):] = -100
            lk = depth_h[k] @ weight.T
            mtp = mtp + F.cross_entropy(lk.float(), lab, reduction="sum", ignore_index=-100) / n
        total = loss + mtp * a.scaling_factor / max(d, 1)
        total.backward()

    step()  # warm-up
    times, growth = [], 0
    for _ in range(a.repeats):
        reset_peak()
        before = current_rss()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        growth = max(growth, peak_rss() - before)
    times.sort()
    med = times[len(times) // 2]
    flops = 6.0 * n * h * v * (d + 1)
    out = {"seconds": med, "seconds_min": times[0], "gflops": flops / med / 1e9,
           "rss_growth_bytes": growth, "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} N={n} H={h} V={v} D={d}: "
          f"median {med:.3f} s, min {times[0]:.3f} s, {out['gflops']:.1f} GFLOP/s, RSS growth {growth / 1e6:.1f} MB")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
