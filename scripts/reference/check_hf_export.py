"""Checks an `mtp export --hf DIR` directory with `transformers` itself (not run in CI).

1. Loads DIR with `LlamaForCausalLM.from_pretrained(DIR, output_loading_info=True)` and
   reports the loading info. Missing keys and mismatched sizes are failures. Unexpected keys
   are split in two: those of the MTP layers (`model.layers.{L+k}.*` for the D =
   `num_nextn_predict_layers` depths, the DeepSeek-V3 layout, which a Llama model has no
   module for and leaves aside, as DeepSeek-V3's own checkpoints carry their layer 61 that
   `DeepseekV3ForCausalLM` ignores) are listed as expected; any other is a failure.
2. Greedy decoding of --prompt for --max-new-tokens tokens; with --expected (our tokens, as
   `mtp generate --checkpoint DIR --prompt-tokens ... --json` printed them) the two must be
   identical.

Usage: python3 scripts/reference/check_hf_export.py DIR --prompt 1,2,3 [--expected 4,5,6] [--max-new-tokens 20]
Exit status 0 when every check passes.
"""
import argparse, json, os, re, sys
import torch
from safetensors import safe_open
from transformers import LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("directory")
    ap.add_argument("--prompt", required=True, help="comma-separated token ids")
    ap.add_argument("--expected", help="comma-separated token ids our greedy decoding produced")
    ap.add_argument("--max-new-tokens", type=int, default=20)
    args = ap.parse_args()

    config = json.load(open(os.path.join(args.directory, "config.json")))
    layers, depths = config["num_hidden_layers"], config.get("num_nextn_predict_layers", 0)
    with safe_open(os.path.join(args.directory, "model.safetensors"), "pt") as f:
        print(f"model.safetensors: metadata {f.metadata()}, {len(list(f.keys()))} tensors")

    model, info = LlamaForCausalLM.from_pretrained(args.directory, output_loading_info=True, dtype=torch.float32)
    model.eval()
    mtp_pattern = re.compile(r"model\.layers\.(\d+)\.")
    def is_mtp(key):
        m = mtp_pattern.match(key)
        return m is not None and layers <= int(m.group(1)) < layers + depths
    unexpected = sorted(info.get("unexpected_keys", []))
    mtp_keys = [k for k in unexpected if is_mtp(k)]
    other = [k for k in unexpected if not is_mtp(k)]
    missing = sorted(info.get("missing_keys", []))
    mismatched = info.get("mismatched_keys", [])
    print(f"missing keys: {missing}")
    print(f"mismatched keys: {mismatched}")
    print(f"unexpected keys outside the MTP layers: {other}")
    print(f"MTP layer keys left aside by LlamaForCausalLM (DeepSeek-V3 layout, {depths} depths): {len(mtp_keys)}")
    for k in mtp_keys:
        print(f"  {k}")
    ok = not missing and not other and not mismatched

    prompt = [int(t) for t in args.prompt.split(",")]
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=args.max_new_tokens, do_sample=False,
                             pad_token_id=0, eos_token_id=None)
    tokens = out[0, len(prompt):].tolist()
    print(f"transformers greedy: {','.join(map(str, tokens))}")
    if args.expected is not None:
        expected = [int(t) for t in args.expected.split(",")]
        same = tokens == expected[:len(tokens)] and len(expected) >= len(tokens)
        print(f"ours                : {','.join(map(str, expected))}")
        print(f"identical greedy output: {'yes' if same else 'NO'}")
        ok = ok and same
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
