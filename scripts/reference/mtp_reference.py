#!/usr/bin/env python3
"""Independent float64 NumPy reference of the Multi-Token-Prediction loss.

It mirrors SPEC sections 1-4 (/work/shared/SPEC.md) and interprets the
section-6 case-file format, computing the loss AND analytic float64 gradients
with respect to every floating input tensor (`logits`, `hidden_states`,
`lm_head.weight`, `mtp_per_depth_h.k`, `mtp_per_depth_logits.k`).

Conventions
-----------
* All arithmetic is float64 on the *stored* input values (a Float16/BFloat16
  input is first decoded exactly, then widened); nothing is rounded to the
  input dtype in between.  Half-precision cases therefore need a loose
  tolerance on the Swift side (the expected files carry one).
* reduction "none": the loss is the per-row vector; gradients are those of the
  SUM of that vector (the Swift `mtp loss` tool runs backward on the sum of a
  non-scalar loss).  `evaluate_case` returns `loss` = that sum and `rows` =
  the vector.
* A gradient is reported for a floating input iff it took part in the loss
  (e.g. `lm_head.weight` only when the fused loss or the MTP hidden path with
  a logits loss used it; the MTP outputs are absent under `training=false`).
  A participating input whose gradient is identically zero (all labels
  ignored, num_label_tokens == 0) is still reported (zeros).
* SPEC error conditions raise `RefError`; the message contains the substring
  the fixtures expect.

Usage
-----
    python3 mtp_reference.py --self-test          # FD gradients + naive loops
    python3 mtp_reference.py CASE.safetensors [--grads OUT.safetensors]
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys

import numpy as np

DEFAULT_IGNORE_INDEX = -100
LOSS_KINDS = ("MaskedCrossEntropy", "ChunkedCrossEntropy", "FusedLinearCrossEntropy")
REDUCTIONS = ("sum", "mean", "none")
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


class RefError(Exception):
    """A SPEC input-validation error (the Swift code throws)."""


# ----------------------------------------------------------------------------
# dtypes and safetensors I/O (numpy + json + struct only)
# ----------------------------------------------------------------------------

def bf16_bits(x) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    if nan.any():
        rounded = np.where(nan, ((bits >> 16) | 0x40).astype(np.uint16), rounded)
    return rounded.astype(np.uint16)


def bf16_to_f32(bits) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to_dtype(x, dtype: str) -> np.ndarray:
    """Values exactly representable in `dtype`, returned as float64."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "F64":
        return x.copy()
    if dtype == "F32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float64)
    if dtype == "BF16":
        return bf16_to_f32(bf16_bits(x.astype(np.float32))).astype(np.float64)
    raise ValueError(dtype)


class T:
    """A tensor of a case file: safetensors dtype string + numpy values.

    Floating tensors hold float64 values exactly representable in `dtype`;
    integer tensors hold int64; BOOL holds bool."""

    __slots__ = ("dtype", "values")

    def __init__(self, dtype: str, values):
        self.dtype = dtype
        if dtype in FLOAT_DTYPES:
            self.values = np.asarray(values, dtype=np.float64)
        elif dtype == "BOOL":
            self.values = np.asarray(values, dtype=bool)
        else:
            self.values = np.asarray(values, dtype=np.int64)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def shape(self):
        return tuple(self.values.shape)

    def __repr__(self):
        return f"T({self.dtype}, {list(self.shape)})"


_NP_CODES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
             "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4",
             "U64": "<u8", "BOOL": "u1"}


def _encode(t: T) -> bytes:
    if t.dtype == "BF16":
        return bf16_bits(t.values.astype(np.float32)).astype("<u2").tobytes()
    return np.ascontiguousarray(t.values.astype(_NP_CODES[t.dtype])).tobytes()


def safetensors_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = _encode(t)
        header[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    hj += b" " * ((-len(hj)) % 8)
    return struct.pack("<Q", len(hj)) + hj + b"".join(blobs)


def write_safetensors(path: str, tensors: dict, metadata: dict | None = None) -> None:
    with open(path, "wb") as f:
        f.write(safetensors_bytes(tensors, metadata))


def read_safetensors(path: str):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode())
    meta = header.pop("__metadata__", {}) or {}
    buf = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        b0, b1 = info["data_offsets"]
        raw, dt, shape = buf[b0:b1], info["dtype"], info["shape"]
        if dt == "BF16":
            vals = bf16_to_f32(np.frombuffer(raw, dtype="<u2")).astype(np.float64)
        elif dt == "BOOL":
            vals = np.frombuffer(raw, dtype="u1").astype(bool)
        else:
            vals = np.frombuffer(raw, dtype=_NP_CODES[dt])
        tensors[name] = T(dt, vals.reshape(shape))
    return tensors, meta


# ----------------------------------------------------------------------------
# SPEC section 1: rolling helpers
# ----------------------------------------------------------------------------

def roll_tensor(t, shifts: int = -1, dim: int = -1) -> np.ndarray:
    """Roll along `dim` by `shifts` (negative = left); wrapped positions -> 0."""
    t = np.asarray(t)
    if t.ndim == 0:
        return t.copy()
    n = t.shape[dim]
    if shifts == 0 or n == 0:
        return t.copy()
    out = np.roll(t, shifts, axis=dim)
    s = abs(shifts)
    idx = [slice(None)] * t.ndim
    idx[dim] = slice(max(n - s, 0), n) if shifts < 0 else slice(0, min(s, n))
    out[tuple(idx)] = 0
    return out


def shift_packed_tensor(t, depth: int, seq_idx=None, fill_value=0, batch_dim: int = 0, seq_dim: int = 1):
    """value[t] <- value[t+k] when t+k < S and same sub-sequence, else fill."""
    t = np.asarray(t)
    if t.ndim < 2:
        raise RefError(f"shift_packed_tensor needs rank >= 2, got shape {list(t.shape)}")
    if depth <= 0:
        raise RefError(f"depth must be > 0, got {depth}")
    bd, sd = batch_dim % t.ndim, seq_dim % t.ndim
    if bd == sd:
        raise RefError("batch_dim and seq_dim must differ")
    x = np.moveaxis(t, (bd, sd), (0, 1))
    B, S = x.shape[0], x.shape[1]
    if seq_idx is not None:
        seq_idx = np.asarray(seq_idx)
        if tuple(seq_idx.shape) != (B, S):
            raise RefError(f"seq_idx shape {list(seq_idx.shape)} != [B, S] = {[B, S]}")
    out = np.full_like(x, fill_value)
    for b in range(B):
        for s in range(S):
            src = s + depth
            if src < S and (seq_idx is None or seq_idx[b, src] == seq_idx[b, s]):
                out[b, s] = x[b, src]
    return np.moveaxis(out, (0, 1), (bd, sd))


def seq_idx_from_cu_seqlens(cu, length: int) -> np.ndarray:
    """Right searchsorted of positions in cu[1:] (tail padding -> n)."""
    cu = np.asarray(cu, dtype=np.int64)
    if cu.ndim == 2 and cu.shape[0] == 1:
        cu = cu[0]
    if cu.ndim != 1 or cu.shape[0] < 1:
        raise RefError(f"cu_seqlens must have shape [n+1] or [1, n+1], got {list(cu.shape)}")
    return np.searchsorted(cu[1:], np.arange(length), side="right").astype(np.int64)


# ----------------------------------------------------------------------------
# SPEC section 2: per-token losses
# ----------------------------------------------------------------------------

class LossFn:
    def __init__(self, kind="MaskedCrossEntropy", reduction="sum", ignore_index=DEFAULT_IGNORE_INDEX,
                 fp32_upcast=True, logit_softcapping=0.0, chunk_len=32):
        if kind not in LOSS_KINDS:
            raise RefError(f"unknown loss_fn {kind!r}")
        if reduction not in REDUCTIONS:
            raise RefError(f"unknown reduction {reduction!r}")
        if kind == "ChunkedCrossEntropy" and chunk_len <= 0:
            raise RefError(f"chunk_len must be > 0, got {chunk_len}")
        self.kind, self.reduction, self.ignore_index = kind, reduction, int(ignore_index)
        self.fp32_upcast, self.softcap, self.chunk_len = fp32_upcast, float(logit_softcapping), chunk_len

    @property
    def fused(self) -> bool:
        return self.kind == "FusedLinearCrossEntropy"


class Res:
    """value: float (or rows vector for reduction none); scalar: the float the
    gradients belong to; grads: {input name: d scalar / d input (float64)}."""

    def __init__(self, value, scalar, grads, rows=None, per_depth=None):
        self.value, self.scalar, self.grads, self.rows, self.per_depth = value, scalar, grads, rows, per_depth


def _add(grads: dict, name, g):
    if name is None:
        return
    grads[name] = grads[name] + g if name in grads else g.copy()


def ce_core(z, labels, fn: LossFn, num_label_tokens=None):
    """z [N, V] float64, labels [N] int. Returns (value, scalar, rows, dz)."""
    N, V = z.shape
    labels = np.asarray(labels, dtype=np.int64)
    if num_label_tokens is not None and fn.reduction != "sum":
        raise RefError(f"num_label_tokens is only supported with reduction sum, got reduction {fn.reduction}")
    ig = fn.ignore_index
    bad = np.nonzero((labels != ig) & ((labels < 0) | (labels >= V)))[0]
    if bad.size:
        p = int(bad[0])
        raise RefError(f"label {int(labels[p])} at flat position {p} is out of range [0, {V})")
    valid = labels != ig
    if N == 0:
        rows, dz = np.zeros(0), np.zeros((0, V))
    else:
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        se = e.sum(axis=1, keepdims=True)
        lse = (m + np.log(se))[:, 0]
        safe = np.where(valid, labels, 0)
        rows = np.where(valid, lse - z[np.arange(N), safe], 0.0)
        p = e / se
        p[np.arange(N), safe] -= 1.0
        dz = p * valid[:, None]
    if fn.reduction == "none":
        return rows, float(rows.sum()), rows, dz
    if fn.reduction == "mean":
        cnt = int(valid.sum())
        if cnt == 0:
            return 0.0, 0.0, None, np.zeros_like(dz)
        val = float(rows.sum()) / cnt
        return val, val, None, dz / cnt
    # sum
    if num_label_tokens is not None:
        if int(num_label_tokens) == 0:
            return 0.0, 0.0, None, np.zeros_like(dz)
        val = float(rows.sum()) / int(num_label_tokens)
        return val, val, None, dz / int(num_label_tokens)
    val = float(rows.sum())
    return val, val, None, dz


def _apply_mask(labels, mask, ignore_index):
    if mask is None:
        return labels
    mask = np.asarray(mask)
    if mask.shape != labels.shape:
        raise RefError(f"mask shape {list(mask.shape)} does not match labels shape {list(labels.shape)}")
    return np.where(mask == 0, ignore_index, labels)


def loss_from_logits(fn: LossFn, logits, lname, labels, mask=None, num_label_tokens=None) -> Res:
    """MaskedCrossEntropy / ChunkedCrossEntropy (identical values)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim < 1 or tuple(logits.shape[:-1]) != tuple(labels.shape):
        raise RefError(f"logits shape {list(logits.shape)} does not match labels shape {list(labels.shape)}")
    labels = _apply_mask(labels, mask, fn.ignore_index)
    V = logits.shape[-1]
    val, scal, rows, dz = ce_core(logits.reshape(-1, V), labels.reshape(-1), fn, num_label_tokens)
    grads = {}
    _add(grads, lname, dz.reshape(logits.shape))
    return Res(val, scal, grads, rows)


def _check_hidden(hidden, labels, W):
    if hidden.ndim < 1 or tuple(hidden.shape[:-1]) != tuple(labels.shape):
        raise RefError(f"hidden_states shape {list(hidden.shape)} does not match labels shape {list(labels.shape)}")
    if W.ndim != 2 or W.shape[1] != hidden.shape[-1]:
        raise RefError(f"lm weight shape {list(W.shape)} does not match hidden size {hidden.shape[-1]}")


def loss_from_hidden(fn: LossFn, hidden, hname, labels, W, wname, num_label_tokens=None,
                     softcap: float = 0.0) -> Res:
    """CE of (softcapped) hidden @ W^T; used by the fused loss (softcap =
    fn.softcap) and by the MTP hidden path with a logits loss (softcap 0)."""
    hidden = np.asarray(hidden, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    _check_hidden(hidden, labels, W)
    H = hidden.shape[-1]
    h2 = hidden.reshape(-1, H)
    z = h2 @ W.T
    if softcap > 0:
        th = np.tanh(z / softcap)
        zc, dcap = softcap * th, 1.0 - th * th
    else:
        zc, dcap = z, None
    val, scal, rows, dzc = ce_core(zc, labels.reshape(-1), fn, num_label_tokens)
    dz = dzc * dcap if dcap is not None else dzc
    grads = {}
    _add(grads, hname, (dz @ W).reshape(hidden.shape))
    _add(grads, wname, dz.T @ h2)
    return Res(val, scal, grads, rows)


def calculate_loss(fn: LossFn, labels, logits=None, hidden=None, lm_weight=None, head=None,
                   mask=None, num_label_tokens=None) -> Res:
    """Dispatcher.  logits/hidden/lm_weight/head are (name, array) or None."""
    if fn.fused:
        W = lm_weight if lm_weight is not None else head
        if hidden is None:
            raise RefError("FusedLinearCrossEntropy needs hidden_states")
        if W is None:
            raise RefError("lm_head module not found in model")
        return loss_from_hidden(fn, hidden[1], hidden[0], labels, W[1], W[0], num_label_tokens, fn.softcap)
    if logits is None:
        raise RefError(f"{fn.kind} needs logits")
    return loss_from_logits(fn, logits[1], logits[0], labels, mask, num_label_tokens)


# ----------------------------------------------------------------------------
# SPEC section 3: calculate_mtp_loss
# ----------------------------------------------------------------------------

def depth_labels(labels, k, ignore_index, seq_idx=None, cur=None):
    """Depth-k labels from depth-(k-1)'s rolled tensor `cur` (cumulative)."""
    base = labels if cur is None else cur
    cur = roll_tensor(base, -1, -1)
    lab = cur.copy()
    S = lab.shape[-1]
    lab[..., S - min(k + 1, S):] = ignore_index
    if seq_idx is not None:
        lab = np.where(roll_tensor(seq_idx, -(k + 1), -1) != seq_idx, ignore_index, lab)
    return cur, lab


def resolve_seq_idx(labels, seq_idx=None, cu_seqlens=None):
    if seq_idx is not None:
        s = np.asarray(seq_idx, dtype=np.int64)
        if labels.ndim == 2 and s.ndim == 1 and s.shape[0] == labels.shape[1]:
            s = np.broadcast_to(s, labels.shape).copy()
        elif labels.ndim == 1 and s.ndim == 2 and s.shape[0] == 1:
            s = s[0]
        if tuple(s.shape) != tuple(labels.shape):
            raise RefError(
                f"seq_idx shape {list(np.asarray(seq_idx).shape)} does not match labels shape "
                f"{list(labels.shape)}; under pipeline parallelism chunk seq_idx per microbatch")
        return s
    if cu_seqlens is not None:
        s = seq_idx_from_cu_seqlens(cu_seqlens, labels.shape[-1])
        if labels.ndim == 2:
            s = np.broadcast_to(s, labels.shape).copy()
        return s
    return None


def calculate_mtp_loss(fn: LossFn, labels, per_depth_h=None, per_depth_logits=None, per_depth_targets=None,
                       head=None, scaling_factor=0.1, num_label_tokens=None,
                       ignore_index=DEFAULT_IGNORE_INDEX, cu_seqlens=None, seq_idx=None, lm_weight=None,
                       return_per_depth=False) -> Res:
    """per_depth_h / per_depth_logits: lists of (name, array); head /
    lm_weight: (name, array) or None."""
    if (per_depth_h is None) == (per_depth_logits is None):
        raise RefError("Provide exactly one of mtp_per_depth_h or mtp_per_depth_logits")
    labels = np.asarray(labels, dtype=np.int64)
    outs = per_depth_h if per_depth_h is not None else per_depth_logits
    outs = [(n, np.asarray(a, dtype=np.float64)) for n, a in outs]
    D = len(outs)
    if D == 0:
        raise RefError("Provide exactly one of mtp_per_depth_h or mtp_per_depth_logits (got an empty list)")
    # 1. THD squeeze
    if labels.ndim == 1:
        outs = [(n, a[0] if a.ndim == 3 and a.shape[0] == 1 else a) for n, a in outs]
    # 2. explicit targets
    if per_depth_targets is not None:
        if cu_seqlens is not None or seq_idx is not None:
            raise RefError("per_depth_targets cannot be combined with cu_seqlens or seq_idx")
        if len(per_depth_targets) != D:
            raise RefError(f"Expected {D} per-depth targets, got {len(per_depth_targets)}")
        for i, tg in enumerate(per_depth_targets):
            if tuple(np.shape(tg)) != tuple(labels.shape):
                raise RefError(f"per_depth_targets[{i}] shape {list(np.shape(tg))} != labels shape {list(labels.shape)}")
    # 3. sequence index
    sidx = None if per_depth_targets is not None else resolve_seq_idx(labels, seq_idx, cu_seqlens)
    # 4. head weight for the fused loss (fetched once, shared)
    W = None
    if fn.fused and per_depth_h is not None:
        W = lm_weight if lm_weight is not None else head
        if W is None:
            raise RefError("lm_head module not found in model")
    grads, total, per_depth, cur = {}, None, [], None
    for k in range(D):
        if per_depth_targets is not None:
            lab = np.asarray(per_depth_targets[k], dtype=np.int64)
        else:
            cur, lab = depth_labels(labels, k, ignore_index, sidx, cur)
        name, out = outs[k]
        if per_depth_logits is not None:
            if fn.fused:
                raise RefError("MTP logits are incompatible with FusedLinearCrossEntropy")
            r = loss_from_logits(fn, out, name, lab, None, num_label_tokens)
        elif fn.fused:
            r = loss_from_hidden(fn, out, name, lab, W[1], W[0], num_label_tokens, fn.softcap)
        else:
            if head is None:
                raise RefError("lm_head module not found in model")
            r = loss_from_hidden(fn, out, name, lab, head[1], head[0], num_label_tokens, 0.0)
        per_depth.append(r.value)
        total = r.value if total is None else total + r.value
        for n, g in r.grads.items():
            _add(grads, n, g * (scaling_factor / D))
    loss = total * scaling_factor / D
    rows = loss if fn.reduction == "none" else None
    scalar = float(np.sum(loss))
    pd = np.array(per_depth, dtype=np.float64) if return_per_depth else None
    return Res(loss, scalar, grads, rows, pd)


# ----------------------------------------------------------------------------
# Case-file interpreter (SPEC section 6) incl. SPEC section 4 (pipeline)
# ----------------------------------------------------------------------------

def _b(meta, key, default):
    v = meta.get(key)
    if v is None:
        return default
    if v.lower() in ("true", "1"):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise RefError(f"metadata {key}={v!r} is not a boolean")


def _f(meta, key, default=None):
    v = meta.get(key)
    return default if v is None else float(v)


def _i(meta, key, default=None):
    v = meta.get(key)
    return default if v is None else int(v)


def loss_fn_from_meta(meta) -> LossFn:
    return LossFn(kind=meta.get("loss_fn", "MaskedCrossEntropy"), reduction=meta.get("reduction", "sum"),
                  ignore_index=_i(meta, "ignore_index", DEFAULT_IGNORE_INDEX),
                  fp32_upcast=_b(meta, "fp32_upcast", True),
                  logit_softcapping=_f(meta, "logit_softcapping", 0.0), chunk_len=_i(meta, "chunk_len", 32))


def _named(tensors, name):
    t = tensors.get(name)
    return None if t is None else (name if t.is_float else None, t.values.astype(np.float64))


def _collect(tensors, prefix):
    out, k = [], 0
    while f"{prefix}.{k}" in tensors:
        out.append(f"{prefix}.{k}")
        k += 1
    return out or None


def _labels(tensors):
    t = tensors.get("labels")
    if t is None:
        raise RefError("case has no labels tensor")
    if t.is_float or t.dtype == "BOOL":
        raise RefError(f"labels must be an integer tensor, got {t.dtype}")
    return t.values.astype(np.int64)


def _pipeline(fn: LossFn, tensors, meta):
    labels = _labels(tensors)
    form = meta.get("output_form", "tuple")
    head = _named(tensors, "lm_head.weight")
    model_sf = _f(meta, "model_scaling_factor")
    config_sf = _f(meta, "config_scaling_factor")
    training = _b(meta, "training", True)
    ig = _i(meta, "ignore_index", DEFAULT_IGNORE_INDEX)
    seq_idx = None
    h_list = logit_list = None
    if form == "tuple":
        first = "hidden_states" if fn.fused else "logits"
        if first not in tensors:
            raise RefError(f"tuple output needs {first}")
        elems = [(first, tensors[first])]
        for prefix in ("mtp_per_depth_h", "mtp_per_depth_logits"):
            elems += [(n, tensors[n]) for n in (_collect(tensors, prefix) or [])]
        if "seq_idx" in tensors:
            elems.append(("seq_idx", tensors["seq_idx"]))
        last = elems[-1][1]
        if len(elems) > 1 and last.dtype == "I32" and len(last.shape) == 2:  # the tail
            seq_idx = last.values.astype(np.int64)
            elems.pop()
        mtp = [(n if t.is_float else None, t.values.astype(np.float64)) for n, t in elems[1:]]
        if mtp:
            if _b(meta, "mtp_outputs_are_logits", False):
                logit_list = mtp
            else:
                h_list = mtp
        main_named = _named(tensors, first)
        model_level = model_sf if model_sf is not None else 0.1
    elif form == "model_output":
        key = "hidden_states" if fn.fused else "logits"
        if key not in tensors:
            raise RefError(f"model output has no {key}")
        main_named = _named(tensors, key)
        hn, ln = _collect(tensors, "mtp_per_depth_h"), _collect(tensors, "mtp_per_depth_logits")
        h_list = [_named(tensors, n) for n in hn] if hn else None
        logit_list = [_named(tensors, n) for n in ln] if ln else None
        out_sf = _f(meta, "output_scaling_factor")
        model_level = out_sf if out_sf is not None else (model_sf if model_sf is not None else 0.1)
    elif form in ("hidden", "logits"):
        key = "hidden_states" if form == "hidden" else "logits"
        if key not in tensors:
            raise RefError(f"bare output needs {key}")
        main_named = _named(tensors, key)
        model_level = 0.1
    else:
        raise RefError(f"unknown output_form {form!r}")
    W = head if fn.fused else None
    if fn.fused and W is None:
        raise RefError("lm_head module not found in model")
    if fn.fused:
        main = calculate_loss(fn, labels, hidden=main_named, lm_weight=W)
    else:
        main = calculate_loss(fn, labels, logits=main_named)
    grads = dict(main.grads)
    value = main.value
    if (h_list or logit_list) and training:
        sf = config_sf if config_sf is not None else model_level
        cu = tensors["cu_seqlens"].values if "cu_seqlens" in tensors else None
        r = calculate_mtp_loss(fn, labels, per_depth_h=h_list, per_depth_logits=logit_list, head=head,
                               scaling_factor=sf, ignore_index=ig, cu_seqlens=cu, seq_idx=seq_idx, lm_weight=W)
        value = value + r.value
        for n, g in r.grads.items():
            _add(grads, n, g)
    rows = value if fn.reduction == "none" else None
    return Res(value, float(np.sum(value)), grads, rows)


def evaluate_case(tensors: dict, meta: dict) -> dict:
    """Evaluate one case. Returns {"loss": float (sum for reduction none),
    "rows": vector|None, "per_depth": vector|None, "grads": {name: array}}."""
    entry = meta.get("entry", "calculate_mtp_loss")
    fn = loss_fn_from_meta(meta)
    nlt = _i(meta, "num_label_tokens")
    if entry == "calculate_loss":
        mask = tensors["mask"].values if "mask" in tensors else None
        res = calculate_loss(fn, _labels(tensors), logits=_named(tensors, "logits"),
                             hidden=_named(tensors, "hidden_states"), head=_named(tensors, "lm_head.weight"),
                             mask=mask, num_label_tokens=nlt)
    elif entry == "calculate_mtp_loss":
        hn, ln, tn = (_collect(tensors, p) for p in ("mtp_per_depth_h", "mtp_per_depth_logits", "mtp_per_depth_targets"))
        res = calculate_mtp_loss(
            fn, _labels(tensors),
            per_depth_h=[_named(tensors, n) for n in hn] if hn else None,
            per_depth_logits=[_named(tensors, n) for n in ln] if ln else None,
            per_depth_targets=[tensors[n].values for n in tn] if tn else None,
            head=_named(tensors, "lm_head.weight"), scaling_factor=_f(meta, "scaling_factor", 0.1),
            num_label_tokens=nlt, ignore_index=_i(meta, "ignore_index", DEFAULT_IGNORE_INDEX),
            cu_seqlens=tensors["cu_seqlens"].values if "cu_seqlens" in tensors else None,
            seq_idx=tensors["seq_idx"].values if "seq_idx" in tensors else None,
            return_per_depth=_b(meta, "return_per_depth", False))
    elif entry == "pipeline_loss":
        res = _pipeline(fn, tensors, meta)
    else:
        raise RefError(f"unknown entry {entry!r}")
    grads = {n: g.reshape(tensors[n].shape) for n, g in res.grads.items() if n is not None}
    return {"loss": res.scalar, "rows": None if res.rows is None else np.asarray(res.rows, dtype=np.float64),
            "per_depth": res.per_depth, "grads": grads}


# ----------------------------------------------------------------------------
# Self-test: naive loop formulation + central finite differences
# ----------------------------------------------------------------------------

def _naive_row_ce(z_row, label):
    m = max(z_row)
    return m + math.log(sum(math.exp(v - m) for v in z_row)) - z_row[label]


def _naive_linear(h, W, c):
    z = [sum(h[j] * W[v][j] for j in range(len(h))) for v in range(len(W))]
    return [c * math.tanh(x / c) for x in z] if c > 0 else z


def _naive_reduce(rows_valid, reduction, nlt):
    """rows_valid: list of (loss, valid)."""
    s = sum(l for l, ok in rows_valid if ok)
    if reduction == "none":
        return [l if ok else 0.0 for l, ok in rows_valid]
    if reduction == "mean":
        c = sum(1 for _, ok in rows_valid if ok)
        return s / c if c else 0.0
    if nlt is not None:
        return 0.0 if nlt == 0 else s / nlt
    return s


def _naive_rows(fn, labels_flat, logits_rows=None, hidden_rows=None, W=None, softcap=0.0):
    out = []
    for i, lab in enumerate(labels_flat):
        lab = int(lab)
        if lab == fn.ignore_index:
            out.append((0.0, False))
            continue
        z = list(logits_rows[i]) if logits_rows is not None else _naive_linear(list(hidden_rows[i]), W.tolist(), softcap)
        out.append((_naive_row_ce(z, lab), True))
    return out


def _naive_depth_labels(labels2d, seq2d, k, ig):
    B, S = labels2d.shape
    out = np.full_like(labels2d, ig)
    for b in range(B):
        for t in range(S):
            src = t + k + 1
            if src < S and (seq2d is None or seq2d[b, src] == seq2d[b, t]):
                out[b, t] = labels2d[b, src]
    return out


def naive_evaluate(tensors, meta):
    """Loop formulation of calculate_loss / calculate_mtp_loss / pipeline
    values (no gradients, no error checks)."""
    entry = meta.get("entry", "calculate_mtp_loss")
    fn = loss_fn_from_meta(meta)
    nlt = _i(meta, "num_label_tokens")
    labels = tensors["labels"].values.astype(np.int64)
    V = lambda name: tensors[name].values  # noqa: E731

    def one(lab_flat, name, as_logits, n=None, fused=fn.fused):
        arr = V(name)
        if as_logits:
            rows = _naive_rows(fn, lab_flat, logits_rows=arr.reshape(-1, arr.shape[-1]).tolist())
        else:
            rows = _naive_rows(fn, lab_flat, hidden_rows=arr.reshape(-1, arr.shape[-1]).tolist(),
                               W=V("lm_head.weight"), softcap=fn.softcap if fused else 0.0)
        return _naive_reduce(rows, fn.reduction, n)

    def mtp(names, as_logits, sf, seq, cu, targets, n):
        lab2 = labels.reshape(1, -1) if labels.ndim == 1 else labels
        s2 = None
        if seq is not None:
            s2 = np.asarray(seq, dtype=np.int64).reshape(1, -1) if labels.ndim == 1 else np.asarray(seq, dtype=np.int64)
            if s2.shape != lab2.shape:
                s2 = np.tile(s2.reshape(1, -1), (lab2.shape[0], 1))
        elif cu is not None:
            cuf = [int(x) for x in np.asarray(cu).reshape(-1)]
            row = [sum(1 for c in cuf[1:] if c <= p) for p in range(lab2.shape[1])]
            s2 = np.tile(np.array(row), (lab2.shape[0], 1))
        depth_vals = []
        for k, name in enumerate(names):
            lk = targets[k].reshape(-1) if targets else _naive_depth_labels(lab2, s2, k, fn.ignore_index).reshape(-1)
            depth_vals.append(one(lk, name, as_logits, n))
        D = len(names)
        if fn.reduction == "none":
            tot = [sum(d[i] for d in depth_vals) * sf / D for i in range(len(depth_vals[0]))]
        else:
            tot = sum(depth_vals) * sf / D
        return tot, depth_vals

    pd = None
    if entry == "calculate_loss":
        lab = labels.copy()
        if "mask" in tensors:
            lab = np.where(tensors["mask"].values == 0, fn.ignore_index, lab)
        val = one(lab.reshape(-1), "hidden_states" if fn.fused else "logits", not fn.fused, nlt)
    elif entry == "calculate_mtp_loss":
        hn, ln = _collect(tensors, "mtp_per_depth_h"), _collect(tensors, "mtp_per_depth_logits")
        tn = _collect(tensors, "mtp_per_depth_targets")
        val, pd = mtp(hn or ln, ln is not None, _f(meta, "scaling_factor", 0.1),
                      V("seq_idx") if "seq_idx" in tensors else None,
                      V("cu_seqlens") if "cu_seqlens" in tensors else None,
                      [V(n) for n in tn] if tn else None, nlt)
    else:  # pipeline_loss
        form = meta.get("output_form", "tuple")
        key = "hidden_states" if (form == "hidden" or (form in ("tuple", "model_output") and fn.fused)) else "logits"
        val = one(labels.reshape(-1), key, not fn.fused, None)
        names = (_collect(tensors, "mtp_per_depth_h") or []) + (_collect(tensors, "mtp_per_depth_logits") or [])
        seq = None
        if form == "tuple" and "seq_idx" in tensors:
            seq = V("seq_idx")
        if form in ("tuple", "model_output") and names and _b(meta, "training", True):
            as_logits = (_b(meta, "mtp_outputs_are_logits", False) if form == "tuple"
                         else _collect(tensors, "mtp_per_depth_logits") is not None)
            sf = _f(meta, "config_scaling_factor")
            if sf is None and form == "model_output":
                sf = _f(meta, "output_scaling_factor")
            if sf is None:
                sf = _f(meta, "model_scaling_factor", 0.1)
            m, _ = mtp(names, as_logits, sf, seq, V("cu_seqlens") if "cu_seqlens" in tensors else None, None, None)
            val = [a + b for a, b in zip(val, m)] if fn.reduction == "none" else val + m
    if fn.reduction == "none":
        return float(sum(val)), np.array(val), (np.array(pd) if pd is not None else None)
    return float(val), None, (np.array(pd) if pd is not None else None)


def finite_difference_check(tensors, meta, eps=1e-6, rtol=1e-5, atol=1e-6):
    """Central differences in float64 for every floating input; returns max
    violation ratio (<= 1 passes)."""
    res = evaluate_case(tensors, meta)
    worst = 0.0
    for name, t in tensors.items():
        if not t.is_float:
            continue
        an = res["grads"].get(name)
        fd = np.zeros(t.shape)
        base = t.values
        for idx in np.ndindex(*t.shape):
            h = eps * max(1.0, abs(base[idx]))
            vals = []
            for sgn in (1, -1):
                pert = base.copy()
                pert[idx] += sgn * h
                tt = dict(tensors)
                tt[name] = T(t.dtype, pert)
                vals.append(evaluate_case(tt, meta)["loss"])
            fd[idx] = (vals[0] - vals[1]) / (2 * h)
        if an is None:
            if np.abs(fd).max(initial=0.0) > atol:
                raise AssertionError(f"{name}: no analytic gradient but FD max {np.abs(fd).max()}")
            continue
        ratio = (np.abs(fd - an) / (atol + rtol * np.abs(an))).max(initial=0.0)
        worst = max(worst, float(ratio))
    return worst


def _unit_tests():
    a = np.arange(1, 7).reshape(2, 3)
    assert (roll_tensor(a, -1) == [[2, 3, 0], [5, 6, 0]]).all()
    assert (roll_tensor(a, 1) == [[0, 1, 2], [0, 4, 5]]).all()
    assert (roll_tensor(a, -2, 0) == 0).all()
    assert (roll_tensor(a, 0) == a).all() and (roll_tensor(a, -5) == 0).all()
    assert (roll_tensor(np.zeros((2, 0)), -1).shape == (2, 0))
    cu = np.array([0, 4, 9, 11])
    s = seq_idx_from_cu_seqlens(cu, 13)
    assert s.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3, 3], s
    assert seq_idx_from_cu_seqlens(cu.reshape(1, -1), 5).tolist() == [0, 0, 0, 0, 1]
    # cumulative roll + masking == shift_packed_tensor with fill ignore_index
    rng = np.random.default_rng(7)
    lab = rng.integers(0, 9, size=(3, 10))
    seq = np.sort(rng.integers(0, 4, size=(3, 10)), axis=1)
    cur = None
    for k in range(4):
        cur, dl = depth_labels(lab, k, -100, seq, cur)
        assert (dl == shift_packed_tensor(lab, k + 1, seq, fill_value=-100)).all()
        assert (dl == _naive_depth_labels(lab, seq, k, -100)).all()
    for bad in (lambda: shift_packed_tensor(lab[0], 1), lambda: shift_packed_tensor(lab, 0),
                lambda: shift_packed_tensor(lab, 1, batch_dim=1, seq_dim=1),
                lambda: shift_packed_tensor(lab, 1, seq[:, :5])):
        try:
            bad()
            raise AssertionError("expected RefError")
        except RefError:
            pass
    # bf16 rounding
    assert bf16_bits(np.float32(1.0)) == 0x3F80
    assert bf16_bits(np.float32(1.00390625)) == 0x3F80  # tie -> even
    assert bf16_bits(np.float32(1.01171875)) == 0x3F82  # tie -> even (up)
    # safetensors round trip
    import os
    import tempfile
    tens = {"a": T("BF16", round_to_dtype([1.5, -2.25], "BF16")), "b": T("I32", [[1, 2]]), "c": T("F64", 3.5)}
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.safetensors")
        write_safetensors(p, tens, {"k": "v"})
        back, meta = read_safetensors(p)
        assert meta == {"k": "v"} and all((back[n].values == tens[n].values).all() for n in tens)


def self_test(verbose=False) -> int:
    _unit_tests()
    print("unit tests: ok")
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import make_fixtures  # noqa: E402  (the fixture cases are the main test set)
    n_fd = n_naive = n_err = 0
    worst = 0.0
    for case in make_fixtures.build_cases():
        if case.error is not None:
            try:
                evaluate_case(case.tensors, case.meta)
            except RefError as e:
                assert case.error in str(e), (case.name, str(e))
                n_err += 1
                continue
            raise AssertionError(f"{case.name}: expected error {case.error!r}")
        res = evaluate_case(case.tensors, case.meta)
        nl, nrows, npd = naive_evaluate(case.tensors, case.meta)
        assert abs(nl - res["loss"]) <= 1e-9 * max(1.0, abs(nl)), (case.name, nl, res["loss"])
        if nrows is not None:
            assert np.allclose(nrows, res["rows"], rtol=1e-10, atol=1e-12), case.name
        if npd is not None and res["per_depth"] is not None:
            assert np.allclose(npd, res["per_depth"], rtol=1e-10, atol=1e-12), case.name
        n_naive += 1
        w = finite_difference_check(case.tensors, case.meta)
        if verbose:
            print(f"  {case.name:48s} loss={res['loss']:.6f} fd_ratio={w:.3g}")
        assert w <= 1.0, (case.name, w)
        worst = max(worst, w)
        n_fd += 1
    print(f"naive-loop loss check: {n_naive} cases ok")
    print(f"finite-difference gradient check: {n_fd} cases ok (worst |fd-an|/(atol+rtol|an|) = {worst:.3g})")
    print(f"error cases raise the expected message: {n_err} ok")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?")
    ap.add_argument("--grads")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test(a.verbose)
    if not a.case:
        ap.error("give a case file or --self-test")
    tensors, meta = read_safetensors(a.case)
    try:
        r = evaluate_case(tensors, meta)
    except RefError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = {"loss": r["loss"]}
    if r["per_depth"] is not None:
        out["per_depth"] = [float(x) for x in r["per_depth"]]
    print(json.dumps(out))
    if a.grads:
        write_safetensors(a.grads, {f"grad.{n}": T("F64", g) for n, g in r["grads"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
