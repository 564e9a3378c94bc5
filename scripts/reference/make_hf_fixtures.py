"""Hugging Face model fixtures made by `transformers` itself (pip install torch transformers).

Writes tiny random `LlamaForCausalLM` models with `save_pretrained`, each beside the logits
transformers computes for fixed input ids, so the Swift import is checked against the
library, not against our own code:

  tiny_llama_gqa_tied/       fp32, 4 heads / 2 key-value heads, tied embeddings,
                             rms_norm_eps 1e-5 and rope_theta 5e5 (not our defaults),
                             one model.safetensors
  tiny_llama_sharded_bf16/   bf16 weights, untied head, GQA, sharded by a small
                             max_shard_size (model-0000i-of-0000n.safetensors + index)
  tiny_llama_f16/            f16 weights, untied head, kv heads = heads

Each directory also holds `expected.safetensors`: `input_ids` (int64 [2, 9]) and the
model's `logits` (float32 [2, 9, V]). For the half-precision variants the logits are
computed by the model cast to float32 after its weights were rounded to the half type,
which is what our import computes (weights converted exactly, arithmetic in float32):
every reference is computed by the model read back with `from_pretrained(..., dtype=float32)`.
Norm weights are randomised so a wrong epsilon or a missing norm shows in the logits.

Usage: python3 scripts/reference/make_hf_fixtures.py Tests/Fixtures/hf
"""
import os, shutil, sys
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

INPUT_IDS = torch.tensor([[1, 5, 9, 22, 17, 3, 60, 41, 8],
                          [63, 0, 12, 12, 12, 33, 7, 50, 2]], dtype=torch.long)


def make(name, out, seed, dtype, tie, kv_heads, shard=None, eps=1e-5, theta=500000.0):
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, tie_word_embeddings=tie,
                         rms_norm_eps=eps, rope_theta=theta, max_position_embeddings=128,
                         initializer_range=0.2)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
    path = os.path.join(out, name)
    shutil.rmtree(path, ignore_errors=True)
    model = model.to(dtype)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(path, safe_serialization=True, **kwargs)
    # Read back as a user would, in float32: the weights are the stored half values exactly,
    # and buffers such as RoPE's inv_freq are rebuilt in float32 (`.float()` on the model
    # in memory would keep the half-rounded inv_freq).
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(INPUT_IDS).logits.float().contiguous()
    save_file({"input_ids": INPUT_IDS.contiguous(), "logits": logits}, os.path.join(path, "expected.safetensors"))
    files = sorted(os.listdir(path))
    print(f"{name}: {files}, logits {tuple(logits.shape)}, |logits| max {logits.abs().max():.3f}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/hf"
    os.makedirs(out, exist_ok=True)
    make("tiny_llama_gqa_tied", out, seed=1, dtype=torch.float32, tie=True, kv_heads=2)
    make("tiny_llama_sharded_bf16", out, seed=2, dtype=torch.bfloat16, tie=False, kv_heads=2, shard="20KB")
    make("tiny_llama_f16", out, seed=3, dtype=torch.float16, tie=False, kv_heads=4, eps=1e-6, theta=10000.0)


if __name__ == "__main__":
    main()
