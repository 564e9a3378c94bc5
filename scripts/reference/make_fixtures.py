#!/usr/bin/env python3
"""Generate the `mtp loss` case files (SPEC section 6) and their expected
results from the float64 reference in mtp_reference.py.

    python3 scripts/reference/make_fixtures.py            # writes the fixtures
    python3 scripts/reference/make_fixtures.py --check    # verify files are up to date

For each case NAME it writes Tests/Fixtures/cases/NAME.safetensors (inputs +
`__metadata__`) and Tests/Fixtures/cases/NAME.expected.safetensors:
  * success: F64 `loss` (shape []; the SUM of the rows for reduction none),
    `loss_rows` ([N], reduction none only), `per_depth` ([D], only when
    return_per_depth), `grad.<input>` for every floating input that took part
    in the loss; metadata `rtol`, `atol`, `grad_rtol`, `grad_atol`,
    `description`.
  * error: no tensors; metadata `error` (a substring the error message must
    contain) and `description`.
Every case uses its own seed (crc32 of its name), so regeneration is
byte-identical and adding a case does not change the others.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtp_reference import (RefError, T, evaluate_case, round_to_dtype,  # noqa: E402
                           safetensors_bytes)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CASES_DIR = os.path.join(ROOT, "Tests", "Fixtures", "cases")
EXAMPLES_DIR = os.path.join(ROOT, "Examples")
EXAMPLES = {
    "mtp_fused_bshd": "FusedLinearCrossEntropy MTP loss, BSHD [2, 8] labels, 3 depths of hidden states "
                      "[2, 8, 6], head [13, 6] taken from the model (no lm_weight).",
    "mtp_masked_thd_cuseqlens": "MaskedCrossEntropy MTP loss on a packed THD stream: labels [12], per-depth "
                                "hidden [1, 12, 6] (squeezed), cu_seqlens [0, 4, 9, 11] (token 4 sits on a "
                                "boundary, token 11 is tail padding), return_per_depth.",
    "pipeline_tuple_seqidx": "PipelineCausalLMLoss, tuple output (logits, h0, h1, seq_idx) whose Int32 [2, 8] "
                             "tail is this microbatch's seq_idx; main CE + MTP term (scaling 0.1).",
}

B, S, H, V = 2, 8, 6, 13
TOL = {  # by the lowest precision among the floating inputs
    "F32": ("1e-5", "1e-5", "1e-4", "1e-5"),
    "F16": ("5e-3", "5e-3", "1e-2", "5e-3"),
    "BF16": ("3e-2", "3e-2", "5e-2", "3e-2"),
}


class Case:
    def __init__(self, name, desc, tensors, meta, error=None):
        self.name, self.desc, self.tensors, self.error = name, desc, tensors, error
        self.meta = {k: _s(v) for k, v in meta.items() if v is not None}


def _s(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def R(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def fl(rng, shape, dtype="F32", scale=1.0):
    return T(dtype, round_to_dtype(rng.standard_normal(shape) * scale, dtype))


def lab(rng, shape, v=V, ignore=0.15, ig=-100, dtype="I64"):
    x = rng.integers(0, v, size=shape)
    x[rng.random(shape) < ignore] = ig
    return T(dtype, x)


def I(values, dtype="I64"):  # noqa: E743
    return T(dtype, np.array(values))


SEQ_BS = [[0, 0, 0, 1, 1, 1, 1, 2], [5, 5, 5, 5, 5, 9, 9, 9]]
SEQ_S = [3, 3, 3, 3, 7, 7, 1, 1]
T_THD = 12
CU_THD = [0, 4, 9, 11]  # token 4 on a boundary, token 11 is tail padding


def build_cases():
    cases = []

    def add(name, desc, tensors, error=None, **meta):
        cases.append(Case(name, desc, tensors, meta, error))

    # ------------------------------------------------------------------ calculate_loss
    CL = dict(entry="calculate_loss")
    M, C, F = "MaskedCrossEntropy", "ChunkedCrossEntropy", "FusedLinearCrossEntropy"

    def logits_case(name, desc, lead=(B, S), v=V, dtype="F32", scale=2.0, error=None, labels_dtype="I64",
                    ignore=0.15, **meta):
        r = R(name)
        tens = {"logits": fl(r, (*lead, v), dtype, scale), "labels": lab(r, lead, v, ignore, dtype=labels_dtype)}
        add(name, desc, tens, error, **{**CL, "loss_fn": M, **meta})
        return tens

    def fused_case(name, desc, lead=(B, S), h=H, v=V, dtype="F32", hscale=1.0, wscale=0.7, error=None,
                   ignore=0.15, **meta):
        r = R(name)
        tens = {"hidden_states": fl(r, (*lead, h), dtype, hscale), "lm_head.weight": fl(r, (v, h), dtype, wscale),
                "labels": lab(r, lead, v, ignore)}
        add(name, desc, tens, error, **{**CL, "loss_fn": F, **meta})
        return tens

    for red in ("sum", "mean", "none"):
        logits_case(f"loss_masked_{red}_bshd", f"MaskedCE, reduction {red}, logits [2,8,13]", reduction=red)
        logits_case(f"loss_masked_{red}_flat", f"MaskedCE, reduction {red}, flat logits [10,13]", lead=(10,),
                    reduction=red)
    logits_case("loss_masked_int32_labels", "MaskedCE with Int32 labels", labels_dtype="I32")
    logits_case("loss_masked_label_bounds", "MaskedCE, labels include 0 and V-1", lead=(2, 4), ignore=0.0)
    cases[-1].tensors["labels"] = I([[0, 12, 0, 12], [12, 0, 5, -100]])
    logits_case("loss_chunked_sum_bshd_chunk5", "ChunkedCE sum, 16 rows / V=13 not multiples of chunk_len 5",
                loss_fn=C, chunk_len=5)
    logits_case("loss_chunked_mean_flat_chunk3", "ChunkedCE mean, flat [10,11], chunk_len 3", lead=(10,), v=11,
                loss_fn=C, chunk_len=3, reduction="mean")
    logits_case("loss_chunked_none_bshd_chunk4", "ChunkedCE none, chunk_len 4", loss_fn=C, chunk_len=4,
                reduction="none")
    logits_case("loss_chunked_default_chunk_len", "ChunkedCE sum with the default chunk_len (32 > rows)",
                loss_fn=C)
    fused_case("loss_fused_sum_bshd", "FusedLinearCE sum, hidden [2,8,6], head [13,6]")
    fused_case("loss_fused_mean_flat", "FusedLinearCE mean, hidden [10,6]", lead=(10,), reduction="mean")
    fused_case("loss_fused_none_bshd", "FusedLinearCE none", reduction="none")
    fused_case("loss_fused_softcap30", "FusedLinearCE, logit_softcapping 30 on large logits (std ~20)",
               hscale=3.0, wscale=3.0, logit_softcapping=30.0)
    fused_case("loss_fused_softcap2_flat", "FusedLinearCE mean, logit_softcapping 2.0", lead=(10,), hscale=1.5,
               reduction="mean", logit_softcapping=2.0)
    # half precision
    logits_case("loss_masked_f16_upcast", "MaskedCE, Float16 logits, fp32_upcast true", dtype="F16",
                fp32_upcast=True)
    logits_case("loss_masked_bf16_upcast", "MaskedCE, BFloat16 logits, fp32_upcast true", dtype="BF16",
                fp32_upcast=True)
    logits_case("loss_masked_f16_no_upcast", "MaskedCE, Float16 logits, fp32_upcast false", dtype="F16",
                fp32_upcast=False)
    logits_case("loss_masked_bf16_no_upcast_mean", "MaskedCE mean, BFloat16 logits, fp32_upcast false",
                dtype="BF16", fp32_upcast=False, reduction="mean")
    logits_case("loss_chunked_bf16", "ChunkedCE, BFloat16 logits, chunk_len 5", dtype="BF16", loss_fn=C,
                chunk_len=5)
    fused_case("loss_fused_bf16", "FusedLinearCE, BFloat16 hidden and head", dtype="BF16")
    fused_case("loss_fused_f16_softcap30", "FusedLinearCE, Float16, softcapping 30", dtype="F16", hscale=3.0,
               wscale=3.0, logit_softcapping=30.0)
    # ignored / normalisation
    logits_case("loss_masked_all_ignored_sum", "MaskedCE sum, every label ignored -> 0", ignore=1.0)
    logits_case("loss_masked_all_ignored_mean", "MaskedCE mean, every label ignored -> 0 (not NaN)", ignore=1.0,
                reduction="mean")
    logits_case("loss_chunked_all_ignored_none", "ChunkedCE none, every label ignored -> zeros", ignore=1.0,
                loss_fn=C, chunk_len=5, reduction="none")
    fused_case("loss_fused_all_ignored_mean", "FusedLinearCE mean, every label ignored -> 0", ignore=1.0,
               reduction="mean")
    logits_case("loss_masked_num_label_tokens_0", "MaskedCE sum, num_label_tokens 0 -> exactly 0",
                num_label_tokens=0)
    logits_case("loss_masked_num_label_tokens_37", "MaskedCE sum / num_label_tokens 37", num_label_tokens=37)
    logits_case("loss_chunked_num_label_tokens_9", "ChunkedCE sum / num_label_tokens 9", loss_fn=C, chunk_len=5,
                num_label_tokens=9)
    fused_case("loss_fused_num_label_tokens_0", "FusedLinearCE, num_label_tokens 0 -> exactly 0",
               num_label_tokens=0)
    fused_case("loss_fused_num_label_tokens_12", "FusedLinearCE sum / num_label_tokens 12", num_label_tokens=12)
    r = R("loss_masked_ignore_index_minus1")
    lb = r.integers(0, V, size=(B, S))
    lb[r.random((B, S)) < 0.25] = -1
    add("loss_masked_ignore_index_minus1", "MaskedCE with ignore_index -1",
        {"logits": fl(r, (B, S, V), scale=2.0), "labels": T("I64", lb)}, **CL, loss_fn=M, ignore_index=-1)
    r = R("loss_fused_ignore_index_minus1")
    lb = r.integers(0, V, size=(10,))
    lb[[1, 4, 8]] = -1
    add("loss_fused_ignore_index_minus1", "FusedLinearCE mean with ignore_index -1",
        {"hidden_states": fl(r, (10, H)), "lm_head.weight": fl(r, (V, H), scale=0.7), "labels": T("I64", lb)},
        **CL, loss_fn=F, ignore_index=-1, reduction="mean")
    t = logits_case("loss_masked_equal_logits_row", "MaskedCE; row 3 all 0.75, row 9 all 0 (loss log V)",
                    ignore=0.0)
    lg = t["logits"].values.copy()
    lg[0, 3, :] = 0.75
    lg[1, 1, :] = 0.0
    t["logits"] = T("F32", lg)
    t = logits_case("loss_masked_logits_1e4", "MaskedCE with logits of +-1e4 mixed with O(1) logits",
                    ignore=0.1)
    r = R("loss_masked_logits_1e4/x")
    lg = t["logits"].values.copy()
    big = r.random(lg.shape) < 0.3
    lg[big] = np.where(r.random(lg.shape) < 0.5, 1e4, -1e4)[big]
    lg[0, 0, :] = -1e4
    lg[0, 0, 2] = 1e4
    t["logits"] = T("F32", lg)
    t["labels"].values[0, 0] = 5  # target far below the max: loss 2e4
    for red in ("sum", "mean"):
        t = logits_case(f"loss_masked_mask_{red}", f"MaskedCE {red} with an Int64 mask tensor (0 = ignore)",
                        reduction=red)
        t["mask"] = T("I64", (R(f"mask/{red}").random((B, S)) > 0.3).astype(np.int64))
    # errors
    t = logits_case("error_loss_label_out_of_range", "label 999 >= V", error="999")
    t["labels"].values[1, 2] = 999
    t = logits_case("error_loss_label_negative", "label -7 (not ignore_index)", error="-7")
    t["labels"].values[0, 5] = -7
    t = logits_case("error_loss_label_equals_vocab", "label == V (13)", error="13", ignore=0.0)
    t["labels"].values[1, 7] = V
    logits_case("error_loss_num_label_tokens_mean", "num_label_tokens with reduction mean", error="mean",
                reduction="mean", num_label_tokens=10)
    logits_case("error_loss_num_label_tokens_none", "num_label_tokens with reduction none", error="none",
                reduction="none", num_label_tokens=10)
    logits_case("error_loss_chunk_len_0", "ChunkedCE with chunk_len 0", error="chunk", loss_fn=C, chunk_len=0)
    logits_case("error_loss_chunk_len_negative", "ChunkedCE with chunk_len -3", error="chunk", loss_fn=C,
                chunk_len=-3)
    t = fused_case("error_loss_fused_hidden_labels_mismatch", "hidden [2,8,6] vs labels [2,7]", error="shape")
    t["labels"] = T("I64", t["labels"].values[:, :7])
    t = fused_case("error_loss_fused_no_lm_head", "fused loss, no lm_head.weight", error="lm_head")
    del t["lm_head.weight"]
    t = logits_case("error_loss_logits_labels_mismatch", "logits [2,8,13] vs labels [2,5]", error="shape")
    t["labels"] = T("I64", t["labels"].values[:, :5])

    # ------------------------------------------------------------------ calculate_mtp_loss
    MT = dict(entry="calculate_mtp_loss")

    def mtp_case(name, desc, path="hidden", fn=M, D=2, lead=(B, S), dtype="F32", head_dtype=None, v=V, h=H,
                 ignore=0.1, labels_dtype="I64", thd_unsqueezed=False, hscale=1.0, wscale=0.7, error=None,
                 **meta):
        r = R(name)
        tens = {"labels": lab(r, lead, v, ignore, dtype=labels_dtype)}
        out_lead = (1, *lead) if (len(lead) == 1 and not thd_unsqueezed) else lead
        for k in range(D):
            if path == "hidden":
                tens[f"mtp_per_depth_h.{k}"] = fl(r, (*out_lead, h), dtype, hscale)
            else:
                tens[f"mtp_per_depth_logits.{k}"] = fl(r, (*out_lead, v), dtype, 2.0)
        if path == "hidden":
            tens["lm_head.weight"] = fl(r, (v, h), head_dtype or dtype, wscale)
        add(name, desc, tens, error, **{**MT, "loss_fn": fn, **meta})
        return tens

    mtp_case("mtp_masked_hidden_bshd", "MaskedCE, 2 depths of hidden [2,8,6] through the model head [13,6]")
    mtp_case("mtp_masked_logits_bshd", "MaskedCE, 2 depths of logits [2,8,13]", path="logits")
    mtp_case("mtp_chunked_hidden_bshd", "ChunkedCE chunk_len 5, hidden path", fn=C, chunk_len=5)
    mtp_case("mtp_chunked_logits_thd", "ChunkedCE chunk_len 5, THD labels [12], logits [1,12,13] squeezed",
             path="logits", fn=C, lead=(T_THD,), chunk_len=5)
    mtp_case("mtp_fused_bshd", EXAMPLES["mtp_fused_bshd"], fn=F, D=3)
    mtp_case("mtp_fused_softcap30_bshd", "FusedLinearCE, softcapping 30, large logits", fn=F, hscale=3.0,
             wscale=3.0, logit_softcapping=30.0)
    mtp_case("mtp_fused_softcap2_mean", "FusedLinearCE mean, softcapping 2.0", fn=F, hscale=1.5,
             logit_softcapping=2.0, reduction="mean", return_per_depth=True)
    t = mtp_case("mtp_masked_thd_cuseqlens", EXAMPLES["mtp_masked_thd_cuseqlens"], lead=(T_THD,),
                 return_per_depth=True, ignore=0.0)
    t["cu_seqlens"] = I(CU_THD)
    t = mtp_case("mtp_fused_thd_cuseqlens_1xn", "FusedLinearCE THD, cu_seqlens given as [1, n+1]", fn=F,
                 lead=(T_THD,), ignore=0.0)
    t["cu_seqlens"] = I([CU_THD])
    t = mtp_case("mtp_masked_logits_thd_seqidx_1xT", "THD logits [1,12,13], seq_idx [1,12] (squeezed)",
                 path="logits", lead=(T_THD,), ignore=0.0)
    t["seq_idx"] = I([[0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]])
    t = mtp_case("mtp_masked_logits_thd_seqidx_T", "THD logits [12,13] (not [1,T,V]), seq_idx [12]",
                 path="logits", lead=(T_THD,), thd_unsqueezed=True, ignore=0.0)
    t["seq_idx"] = I([4, 4, 8, 8, 8, 8, 8, 8, 1, 1, 1, 0])
    mtp_case("mtp_masked_thd_unsqueezed_hidden", "THD labels [12], per-depth hidden [12,6] (no squeeze needed)",
             lead=(T_THD,), thd_unsqueezed=True)
    t = mtp_case("mtp_masked_bshd_seqidx_BS", "BSHD, Int64 seq_idx [2,8] differing per batch row", ignore=0.0)
    t["seq_idx"] = I(SEQ_BS)
    t = mtp_case("mtp_masked_bshd_seqidx_S", "BSHD labels [2,8], 1-D seq_idx [8] broadcast over batch",
                 path="logits", ignore=0.0)
    t["seq_idx"] = I(SEQ_S)
    t = mtp_case("mtp_masked_bshd_cuseqlens", "BSHD labels [2,8], cu_seqlens [0,3,8] broadcast over batch",
                 ignore=0.0)
    t["cu_seqlens"] = I([0, 3, 8])
    t = mtp_case("mtp_masked_bshd_cuseqlens_padding", "BSHD, cu_seqlens [0,3,6]: positions 6,7 are padding",
                 path="logits", ignore=0.0, D=3)
    t["cu_seqlens"] = I([0, 3, 6])
    t = mtp_case("mtp_seqidx_over_cuseqlens", "seq_idx [2,8] and cu_seqlens both given: seq_idx wins",
                 ignore=0.0)
    t["seq_idx"] = I(SEQ_BS)
    t["cu_seqlens"] = I([0, 2, 5, 8])
    t = mtp_case("mtp_int32_labels_seqidx", "Int32 labels and Int32 seq_idx [2,8]", labels_dtype="I32",
                 ignore=0.1)
    t["seq_idx"] = I(SEQ_BS, "I32")
    t = mtp_case("mtp_int32_labels_cuseqlens", "Int32 THD labels and Int32 cu_seqlens", path="logits",
                 lead=(T_THD,), labels_dtype="I32", ignore=0.0)
    t["cu_seqlens"] = I(CU_THD, "I32")
    t = mtp_case("mtp_seqidx_arbitrary_values", "seq_idx with arbitrary (negative, large) class ids",
                 ignore=0.0, D=3)
    t["seq_idx"] = I([[-5, -5, 42, 42, 42, 0, 0, 0], [7, 7, 7, 7, -1, -1, 1000000, 1000000]])
    t = mtp_case("mtp_per_depth_targets", "explicit per_depth_targets (used verbatim, no rolling)")
    rt = R("mtp_per_depth_targets/t")
    for k in range(2):
        t[f"mtp_per_depth_targets.{k}"] = lab(rt, (B, S), ignore=0.2)
    t = mtp_case("mtp_per_depth_targets_int32_logits", "Int32 labels and Int32 per_depth_targets, logits path",
                 path="logits", labels_dtype="I32", D=3)
    rt = R("mtp_per_depth_targets_int32_logits/t")
    for k in range(3):
        t[f"mtp_per_depth_targets.{k}"] = lab(rt, (B, S), ignore=0.2, dtype="I32")
    mtp_case("mtp_return_per_depth", "3 depths, return_per_depth (unscaled per-depth losses)", D=3,
             return_per_depth=True)
    mtp_case("mtp_fused_return_per_depth_mean", "FusedLinearCE mean, return_per_depth", fn=F, D=2,
             reduction="mean", return_per_depth=True)
    mtp_case("mtp_scaling_factor_0_3", "scaling_factor 0.3", scaling_factor=0.3)
    mtp_case("mtp_scaling_factor_0", "scaling_factor 0: loss 0, zero grads, per_depth nonzero", path="logits",
             scaling_factor=0.0, return_per_depth=True)
    mtp_case("mtp_num_label_tokens_20", "sum / num_label_tokens 20 at every depth", path="logits",
             num_label_tokens=20, return_per_depth=True)
    mtp_case("mtp_fused_num_label_tokens_20", "FusedLinearCE sum / num_label_tokens 20", fn=F,
             num_label_tokens=20)
    mtp_case("mtp_num_label_tokens_0", "num_label_tokens 0 -> exactly 0", num_label_tokens=0)
    mtp_case("mtp_mean_reduction", "MaskedCE mean, hidden path", reduction="mean", return_per_depth=True)
    mtp_case("mtp_none_reduction", "MaskedCE none: loss_rows = sum_k rows_k * sf / D", path="logits",
             reduction="none")
    r = R("mtp_ignore_index_minus1")
    lb = r.integers(0, V, size=(B, S))
    lb[0, 2] = lb[1, 6] = -1
    add("mtp_ignore_index_minus1", "ignore_index -1 for both rolled positions and labels",
        {"labels": T("I64", lb), "mtp_per_depth_logits.0": fl(r, (B, S, V), scale=2.0),
         "mtp_per_depth_logits.1": fl(r, (B, S, V), scale=2.0)}, **MT, loss_fn=M, ignore_index=-1)
    mtp_case("mtp_depth_exceeds_seq", "S=2 with D=3: depths 1,2 fully ignored (mean -> 0)", D=3, lead=(B, 2),
             ignore=0.0, reduction="mean", return_per_depth=True)
    mtp_case("mtp_fused_bf16", "FusedLinearCE, BFloat16 per-depth hidden and head", fn=F, dtype="BF16")
    mtp_case("mtp_masked_f16_logits", "MaskedCE, Float16 per-depth logits", path="logits", dtype="F16")
    mtp_case("mtp_masked_hidden_f16_head_f32", "MaskedCE hidden path, Float16 hidden, Float32 head",
             dtype="F16", head_dtype="F32")
    # errors
    t = mtp_case("error_mtp_both_h_and_logits", "both mtp_per_depth_h and mtp_per_depth_logits",
                 error="exactly one")
    t["mtp_per_depth_logits.0"] = fl(R("both"), (B, S, V))
    t = mtp_case("error_mtp_neither", "no per-depth outputs at all", error="exactly one")
    for k in range(2):
        del t[f"mtp_per_depth_h.{k}"]
    t = mtp_case("error_mtp_targets_with_seq_idx", "per_depth_targets with seq_idx", error="seq")
    t["seq_idx"] = I(SEQ_BS)
    for k in range(2):
        t[f"mtp_per_depth_targets.{k}"] = lab(R(f"tg{k}"), (B, S))
    t = mtp_case("error_mtp_targets_with_cu_seqlens", "per_depth_targets with cu_seqlens", error="seq")
    t["cu_seqlens"] = I([0, 3, 8])
    for k in range(2):
        t[f"mtp_per_depth_targets.{k}"] = lab(R(f"tg{k}"), (B, S))
    t = mtp_case("error_mtp_targets_wrong_count", "2 depths but 1 per_depth_target (Expected 2 ... got 1)",
                 error="got 1")
    t["mtp_per_depth_targets.0"] = lab(R("tg0"), (B, S))
    t = mtp_case("error_mtp_targets_wrong_shape", "per_depth_targets.1 is [2,5], labels [2,8]", error="shape")
    t["mtp_per_depth_targets.0"] = lab(R("tg0"), (B, S))
    t["mtp_per_depth_targets.1"] = lab(R("tg1"), (B, 5))
    t = mtp_case("error_mtp_seq_idx_shape_mismatch", "seq_idx [2,7] vs labels [2,8]", error="microbatch")
    t["seq_idx"] = I([row[:7] for row in SEQ_BS])
    t = mtp_case("error_mtp_seq_idx_1xS_batch2", "seq_idx [1,8] with labels [2,8] (not broadcast)",
                 error="microbatch")
    t["seq_idx"] = I([SEQ_S])
    t = mtp_case("error_mtp_label_out_of_range", "label 777 reaches depth 0 (position 5 -> 4)", D=1,
                 error="777")
    t["labels"].values[0, 5] = 777
    mtp_case("error_mtp_num_label_tokens_mean", "num_label_tokens with reduction mean", reduction="mean",
             num_label_tokens=20, error="mean")
    mtp_case("error_mtp_chunk_len_0", "ChunkedCE chunk_len 0", fn=C, chunk_len=0, error="chunk")
    mtp_case("error_mtp_fused_with_logits", "FusedLinearCE with per-depth logits", fn=F, path="logits",
             error="incompatible")
    t = mtp_case("error_mtp_fused_hidden_labels_mismatch", "per-depth hidden [2,8,6] vs labels [2,6]", fn=F,
                 error="shape")
    t["labels"] = T("I64", t["labels"].values[:, :6])
    t = mtp_case("error_mtp_no_lm_head", "MaskedCE hidden path without lm_head.weight", error="lm_head")
    del t["lm_head.weight"]
    t = mtp_case("error_mtp_fused_no_lm_head", "FusedLinearCE hidden path without lm_head.weight", fn=F,
                 error="lm_head")
    del t["lm_head.weight"]

    # ------------------------------------------------------------------ pipeline_loss
    PL = dict(entry="pipeline_loss")

    def pp_case(name, desc, form="tuple", fn=M, D=2, mtp="hidden", tail=None, error=None, ignore=0.1, seed=None,
                **meta):
        """mtp: 'hidden' | 'logits' | None; tail: None | 'I32' | 'I64' | 'I32_rank1'."""
        r = R(seed or name)
        tens = {"labels": lab(r, (B, S), ignore=ignore), "lm_head.weight": fl(r, (V, H), scale=0.7)}
        if fn == F or form == "hidden":
            tens["hidden_states"] = fl(r, (B, S, H))
        else:
            tens["logits"] = fl(r, (B, S, V), scale=2.0)
        for k in range(D if mtp else 0):
            if mtp == "hidden":
                tens[f"mtp_per_depth_h.{k}"] = fl(r, (B, S, H))
            else:
                tens[f"mtp_per_depth_logits.{k}"] = fl(r, (B, S, V), scale=2.0)
        if tail == "I32_rank1":
            tens["seq_idx"] = I(SEQ_S, "I32")
        elif tail:
            tens["seq_idx"] = I(SEQ_BS, tail)
        add(name, desc, tens, error, **{**PL, "loss_fn": fn, "output_form": form, **meta})
        return tens

    pp_case("pipeline_tuple_masked_hidden", "tuple (logits, h0, h1), no tail, no cu_seqlens, default sf 0.1")
    pp_case("pipeline_tuple_seqidx", EXAMPLES["pipeline_tuple_seqidx"], tail="I32")
    t = pp_case("pipeline_tuple_cuseqlens_fallback", "tuple without tail: loss.cuSeqlens [0,3,8] is used")
    t["cu_seqlens"] = I([0, 3, 8])
    t = pp_case("pipeline_tuple_tail_over_cuseqlens", "Int32 tail and cu_seqlens: the tail wins", tail="I32")
    t["cu_seqlens"] = I([0, 2, 5, 8])
    pp_case("pipeline_tuple_mtp_logits", "tuple (logits, l0, l1, tail), model.mtpOutputsAreLogits", mtp="logits",
            tail="I32", mtp_outputs_are_logits=True)
    pp_case("pipeline_tuple_fused_seqidx", "fused under PP: tuple (hidden, h0, h1, tail), head shared", fn=F,
            tail="I32")
    pp_case("pipeline_tuple_fused_mean", "fused under PP, reduction mean, 3 depths", fn=F, D=3,
            reduction="mean")
    pp_case("pipeline_tuple_logits_only", "tuple (logits,) only: no MTP term", mtp=None)
    pp_case("pipeline_tuple_tail_only", "tuple (logits, tail): tail stripped, no MTP term", mtp=None, tail="I32")
    pp_case("pipeline_model_output_masked_hidden", "model-output record with per-depth hidden",
            form="model_output")
    pp_case("pipeline_model_output_masked_logits", "model-output record with per-depth logits",
            form="model_output", mtp="logits")
    pp_case("pipeline_model_output_fused", "model-output record, fused loss from hidden_states",
            form="model_output", fn=F)
    pp_case("pipeline_hidden_fused", "bare tensor = hidden states for the fused loss; no MTP", form="hidden",
            fn=F, mtp=None)
    pp_case("pipeline_logits_masked", "bare tensor = logits; no MTP", form="logits", mtp=None)
    pp_case("pipeline_logits_chunked_mean", "bare logits, ChunkedCE mean chunk_len 5", form="logits", fn=C,
            mtp=None, chunk_len=5, reduction="mean")
    pp_case("pipeline_training_false_tuple", "training false: no MTP term (MTP outputs get no grad)",
            tail="I32", training=False)
    pp_case("pipeline_training_false_model_output", "training false, model-output record, fused", fn=F,
            form="model_output", training=False)
    pp_case("pipeline_sf_model_tuple", "tuple: model scaling factor 0.25", seed="pipeline_sf", model_scaling_factor=0.25)
    pp_case("pipeline_sf_config_over_model_tuple", "tuple: config 0.5 beats model 0.25", seed="pipeline_sf",
            config_scaling_factor=0.5, model_scaling_factor=0.25)
    pp_case("pipeline_sf_config_zero_tuple", "tuple: config 0.0 (non-nil) beats model 0.25", seed="pipeline_sf",
            config_scaling_factor=0.0, model_scaling_factor=0.25)
    pp_case("pipeline_sf_output_ignored_in_tuple", "tuple: output_scaling_factor is not used (model 0.25)", seed="pipeline_sf",
            output_scaling_factor=0.9, model_scaling_factor=0.25)
    pp_case("pipeline_sf_output_over_model", "model output: output 0.4 beats model 0.25", seed="pipeline_sf", form="model_output",
            output_scaling_factor=0.4, model_scaling_factor=0.25)
    pp_case("pipeline_sf_config_over_output", "model output: config 0.6 beats output 0.4 and model 0.25", seed="pipeline_sf",
            form="model_output", config_scaling_factor=0.6, output_scaling_factor=0.4, model_scaling_factor=0.25)
    pp_case("pipeline_sf_model_only_model_output", "model output: model 0.3 (no output value)", seed="pipeline_sf",
            form="model_output", model_scaling_factor=0.3)
    pp_case("pipeline_sf_default_model_output", "model output: nothing set -> 0.1", seed="pipeline_sf", form="model_output")
    pp_case("error_pipeline_int64_tail", "Int64 [2,8] last element is not a tail: becomes depth 2 -> shapes",
            tail="I64", error="shape")
    pp_case("error_pipeline_int32_rank1_not_tail", "Int32 [8] last element is not a tail -> shapes",
            tail="I32_rank1", error="shape")
    pp_case("error_pipeline_fused_mtp_logits", "fused loss with mtp_outputs_are_logits", fn=F, mtp="logits",
            mtp_outputs_are_logits=True, error="incompatible")
    t = pp_case("error_pipeline_model_output_both", "model output with per-depth hidden and logits",
                form="model_output", error="exactly one")
    t["mtp_per_depth_logits.0"] = fl(R("ppboth"), (B, S, V))
    return cases


def _precision(tensors):
    dts = {t.dtype for t in tensors.values() if t.is_float}
    return "BF16" if "BF16" in dts else "F16" if "F16" in dts else "F32"


def expected_for(case):
    """(tensors, metadata) of the expected file; checks error cases."""
    try:
        res = evaluate_case(case.tensors, case.meta)
    except RefError as e:
        if case.error is None:
            raise RuntimeError(f"{case.name}: unexpected error {e}") from e
        if case.error not in str(e):
            raise RuntimeError(f"{case.name}: message {str(e)!r} lacks {case.error!r}") from e
        return {}, {"error": case.error, "description": case.desc}, str(e)
    if case.error is not None:
        raise RuntimeError(f"{case.name}: expected error {case.error!r}, got loss {res['loss']}")
    out = {"loss": T("F64", np.float64(res["loss"]))}
    if res["rows"] is not None:
        out["loss_rows"] = T("F64", res["rows"])
    if res["per_depth"] is not None:
        out["per_depth"] = T("F64", res["per_depth"])
    for n, g in res["grads"].items():
        out[f"grad.{n}"] = T("F64", g)
    rtol, atol, grtol, gatol = TOL[_precision(case.tensors)]
    meta = {"rtol": rtol, "atol": atol, "grad_rtol": grtol, "grad_atol": gatol, "description": case.desc}
    return out, meta, res


def render_all():
    files, rows = {}, []
    seen = set()
    for c in build_cases():
        assert c.name not in seen, c.name
        seen.add(c.name)
        exp, emeta, res = expected_for(c)
        files[f"{c.name}.safetensors"] = safetensors_bytes(c.tensors, c.meta)
        files[f"{c.name}.expected.safetensors"] = safetensors_bytes(exp, emeta)
        result = f"error ~ {c.error!r}" if c.error else f"loss = {res['loss']:.6f}"
        rows.append((c.name, c.meta.get("entry", ""), c.meta.get("loss_fn", "")[:7], result, c.desc))
    return files, rows


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="only verify the files on disk are identical")
    a = ap.parse_args(argv)
    files, rows = render_all()
    if a.check:
        bad = [n for n, b in files.items()
               if not os.path.exists(os.path.join(CASES_DIR, n)) or open(os.path.join(CASES_DIR, n), "rb").read() != b]
        extra = sorted(set(os.listdir(CASES_DIR)) - set(files)) if os.path.isdir(CASES_DIR) else []
        if bad or extra:
            print(f"out of date: {bad[:10]} extra: {extra[:10]}")
            return 1
        print(f"{len(files)} fixture files up to date")
        return 0
    if os.path.isdir(CASES_DIR):
        shutil.rmtree(CASES_DIR)
    os.makedirs(CASES_DIR)
    for n, b in files.items():
        with open(os.path.join(CASES_DIR, n), "wb") as f:
            f.write(b)
    os.makedirs(EXAMPLES_DIR, exist_ok=True)
    for name in EXAMPLES:
        for suffix in (".safetensors", ".expected.safetensors"):
            shutil.copyfile(os.path.join(CASES_DIR, name + suffix), os.path.join(EXAMPLES_DIR, name + suffix))
    total = sum(len(b) for b in files.values())
    w = max(len(r[0]) for r in rows)
    print(f"{'case':{w}s}  {'entry':18s} {'loss_fn':7s}  result")
    for name, entry, fn, result, _ in rows:
        print(f"{name:{w}s}  {entry:18s} {fn:7s}  {result}")
    print(f"{len(rows)} cases, {len(files)} files, {total} bytes in {os.path.relpath(CASES_DIR, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
