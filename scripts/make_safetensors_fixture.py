#!/usr/bin/env python3
"""Write Tests/Fixtures/safetensors/python_written.safetensors with the
official Python `safetensors` package (safetensors.numpy.save_file), plus a
JSON description (name, dtype, shape, row-major values) for the Swift reader
test to compare against.

BF16 is NOT included: safetensors.numpy cannot write it (numpy has no
bfloat16 dtype and hand-written bytes are deliberately not used here).

    pip install safetensors numpy
    python3 scripts/make_safetensors_fixture.py
"""

import json
import os

import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT_DIR = os.path.join(ROOT, "Tests", "Fixtures", "safetensors")
METADATA = {"format": "pt", "note": "written by python safetensors"}

# name -> (safetensors dtype, array)
TENSORS = {
    "f32": ("F32", np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(0.5)),
    "f16": ("F16", (np.arange(4, dtype=np.float16) - np.float16(1.5))),
    "i32": ("I32", np.arange(-3, 3, dtype=np.int32).reshape(3, 2)),
    "i64": ("I64", np.arange(5, dtype=np.int64) * 1_000_000_007),
    "bool": ("BOOL", np.arange(4) % 2 == 1),
    "u8": ("U8", np.arange(250, 256, dtype=np.uint8)),
    "i8": ("I8", np.arange(-128, -124, dtype=np.int8)),
    "u16": ("U16", np.arange(65532, 65536, dtype=np.uint16).reshape(2, 2)),
    "f64": ("F64", np.arange(3, dtype=np.float64) / 3.0),
    "scalar_f32": ("F32", np.array(42.25, dtype=np.float32)),
}


def _value(x):
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    return float(x)  # float16/32 values are exact in float64; repr round-trips


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "python_written.safetensors")
    save_file({n: a for n, (_, a) in TENSORS.items()}, path, metadata=METADATA)
    desc = {
        "metadata": METADATA,
        "tensors": [
            {"name": n, "dtype": dt, "shape": list(a.shape), "values": [_value(v) for v in a.reshape(-1)]}
            for n, (dt, a) in TENSORS.items()
        ],
    }
    with open(os.path.join(OUT_DIR, "python_written.json"), "w") as f:
        json.dump(desc, f, indent=1)
        f.write("\n")
    # sanity: the header really carries the dtypes we claim
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    for name, (dt, a) in TENSORS.items():
        assert header[name]["dtype"] == dt and header[name]["shape"] == list(a.shape), (name, header[name])
    print(f"wrote {path} ({os.path.getsize(path)} bytes) and python_written.json")


if __name__ == "__main__":
    main()
