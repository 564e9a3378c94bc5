#!/usr/bin/env python3
"""PyTorch side of `mtp train`'s throughput: the same model and training step, eager, CPU.

Model (as Sources/Training/CausalLM.swift): embedding → L pre-norm decoder blocks
(RMSNorm, multi-head causal attention with RoPE and a document mask from seq_idx,
SwiGLU MLP) → final RMSNorm → LM head, plus D MTP depths (enorm, hnorm, eh_proj on
the concatenation, one decoder block, final norm; embedding and head shared,
ids and positions rolled left cumulatively). Loss: main CE (mean) +
scaling/D · Σ depth CE (mean), labels rolled with seq_idx masking as SPEC §3.
Step: backward, global-norm clip 1.0, AdamW (β 0.9/0.95, weight decay on matrices).
Data: packed rows of random-length documents (16–48 tokens) of random ids: the
step's cost does not depend on the values. Prints tokens/s. Optional: CI never runs it.

Usage: python3 scripts/bench/torch_train.py [--size small|medium|large] [--steps 30 --batch-size 16 --seq-len 64
       --hidden 96 --layers 8 --heads 4 --intermediate 256 --depths 2 --vocab 64] [--compile]
The flags and presets are those of `mtp bench train`; --batch/--seq/--inter are older spellings.
The JSON line adds the process's peak RSS growth over the measured steps (bytes).
"""
import argparse, json, math, resource, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, pos, base=10000.0):
    # x [B, h, S, d], pos [B, S]
    d = x.shape[-1]
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = pos[:, None, :, None].float() * inv  # [B,1,S,d/2]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Block(nn.Module):
    def __init__(self, h, heads, inter):
        super().__init__()
        self.heads = heads
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(h), RMSNorm(h)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(h, h, bias=False) for _ in range(4))
        self.gate_proj, self.up_proj = nn.Linear(h, inter, bias=False), nn.Linear(h, inter, bias=False)
        self.down_proj = nn.Linear(inter, h, bias=False)

    def forward(self, x, pos, mask):
        b, s, h = x.shape
        y = self.input_layernorm(x)
        q, k, v = (p(y).view(b, s, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = rope(q, pos), rope(k, pos)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, s, h))
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


def roll0(t):
    r = torch.roll(t, -1, -1).clone()
    r[..., -1] = 0
    return r


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed = nn.Embedding(a.vocab, a.hidden)
        self.layers = nn.ModuleList(Block(a.hidden, a.heads, a.inter) for _ in range(a.layers))
        self.norm = RMSNorm(a.hidden)
        self.lm_head = nn.Linear(a.hidden, a.vocab, bias=False)
        self.mtp = nn.ModuleList(nn.ModuleDict(dict(enorm=RMSNorm(a.hidden), hnorm=RMSNorm(a.hidden),
                                                    eh_proj=nn.Linear(2 * a.hidden, a.hidden, bias=False),
                                                    block=Block(a.hidden, a.heads, a.inter),
                                                    final=RMSNorm(a.hidden))) for _ in range(a.depths))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, pos, seq):
        s = ids.shape[1]
        causal = torch.ones(s, s, dtype=torch.bool).tril()
        mask = (causal & (seq[:, :, None] == seq[:, None, :]))[:, None]  # [B,1,S,S]
        x = self.embed(ids)
        for blk in self.layers:
            x = blk(x, pos, mask)
        hidden = self.norm(x)
        outs, prev, cur_ids, cur_pos = [], hidden, ids, pos
        for d in self.mtp:
            cur_ids, cur_pos = roll0(cur_ids), roll0(cur_pos)
            z = d["eh_proj"](torch.cat([d["enorm"](self.embed(cur_ids)), d["hnorm"](prev)], -1))
            prev = d["block"](z, cur_pos, mask)
            outs.append(d["final"](prev))
        return hidden, outs


def batch(a, g):
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    seq = torch.zeros(a.batch, a.seq, dtype=torch.long)
    pos = torch.zeros(a.batch, a.seq, dtype=torch.long)
    for r in range(a.batch):
        t, doc = 0, 0
        while t < a.seq:
            n = min(int(torch.randint(16, 49, (1,), generator=g)), a.seq - t)
            seq[r, t:t + n], pos[r, t:t + n] = doc, torch.arange(n)
            t, doc = t + n, doc + 1
    labels = roll0(ids)
    labels[roll0(seq) != seq] = -100
    labels[:, -1] = -100
    return ids, pos, seq, labels


def main():
    presets = {"small": dict(hidden=96, layers=8, heads=4, inter=256, seq=64, batch=16, vocab=64),
               "medium": dict(hidden=256, layers=8, heads=8, inter=704, seq=256, batch=8, vocab=256),
               "large": dict(hidden=512, layers=8, heads=8, inter=1408, seq=512, batch=4, vocab=32000)}
    p = argparse.ArgumentParser()
    p.add_argument("--size", choices=list(presets), default="small")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--depths", type=int, default=2)
    for k, names in dict(batch=["--batch-size", "--batch"], seq=["--seq-len", "--seq"], hidden=["--hidden"],
                         layers=["--layers"], heads=["--heads"], inter=["--intermediate", "--inter"],
                         vocab=["--vocab"]).items():
        p.add_argument(*names, dest=k, type=int, default=None)
    p.add_argument("--scale", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured steps first (compilation happens there)")
    a = p.parse_args()
    for k, v in presets[a.size].items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a)
    if a.compile:
        model = torch.compile(model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(1)

    def step():
        ids, pos, seq, labels = batch(a, g)
        hidden, outs = model(ids, pos, seq)
        loss = F.cross_entropy(model.lm_head(hidden).flatten(0, 1), labels.flatten(), ignore_index=-100)
        cur, mtp = labels, 0.0
        for k, h in enumerate(outs):
            cur = roll0(cur)
            lab = cur.clone()
            lab[:, a.seq - min(k + 1, a.seq):] = -100
            shifted = seq.clone()
            for _ in range(k + 1):
                shifted = roll0(shifted)
            lab[shifted != seq] = -100
            mtp = mtp + F.cross_entropy(model.lm_head(h).flatten(0, 1), lab.flatten(), ignore_index=-100)
        total = loss + mtp * a.scale / max(a.depths, 1)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss)

    for _ in range(a.warmup):
        step()  # warm-up (and, with --compile, compilation)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
    tps = a.steps * a.batch * a.seq / dt
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}: {a.steps} steps in {dt:.2f} s, {tps:.0f} tokens/s")
    print(json.dumps({"tokens_per_second": tps, "seconds": dt, "steps": a.steps, "threads": torch.get_num_threads(),
                      "size": a.size, "compiled": a.compile, "peak_rss_growth_bytes": rss_growth}))


if __name__ == "__main__":
    main()
