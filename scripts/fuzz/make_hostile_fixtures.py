#!/usr/bin/env python3
"""Write the hand-made hostile files in Tests/Fixtures/safetensors/hostile/.

Each is a small safetensors file that the reader must reject with a
SafeTensorsError (SafeTensorsTests.testHostileSampleFilesThrow checks them
all); run.sh also seeds the fuzzer's corpus with them. Inputs the fuzzer
crashed on go in the same folder, named crash-<what>.safetensors.

    python3 scripts/fuzz/make_hostile_fixtures.py
"""

import os
import struct

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "safetensors")
OUT = os.path.join(FIXTURES, "hostile")


def write(name, header, data=b"", declared=None):
    h = header.encode() if isinstance(header, str) else header
    prefix = struct.pack("<Q", len(h) if declared is None else declared)
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(prefix + h + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(FIXTURES, "python_written.safetensors"), "rb") as f:
        good = f.read()
    for name, data in [("truncated_header", good[:100]), ("truncated_data", good[:-10]), ("length_prefix_only", good[:7])]:
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(data)
    write("header_length_max", "{}", declared=2**64 - 1)
    write("overlapping_ranges",
          '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}}',
          bytes(12))
    write("shape_overflow", '{"t":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}')
    write("negative_extent", '{"t":{"dtype":"I64","shape":[-1],"data_offsets":[0,8]}}', bytes(8))
    write("unknown_dtype", '{"t":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}', bytes(8))
    write("offsets_bool", '{"t":{"dtype":"BOOL","shape":[1],"data_offsets":[false,true]}}', bytes(1))
    write("offsets_float", '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1.0]}}', bytes(1))
    write("metadata_not_strings", '{"__metadata__":{"epoch":3}}')
    write("deep_nesting", '{"__metadata__":' + "[" * 4000)
    write("invalid_utf8", b'{"\xff":{}}')
    write("lone_surrogate", '{"\\udfff":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', bytes(4))
    write("duplicate_names",
          '{"t":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}',
          bytes(8))
    print("wrote", len(os.listdir(OUT)), "files to", OUT)


if __name__ == "__main__":
    main()
