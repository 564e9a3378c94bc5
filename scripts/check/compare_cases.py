#!/usr/bin/env python3
"""Runs `mtp loss` on every case under a folder and compares with the
`.expected.safetensors` written by scripts/reference/make_fixtures.py.

Usage: python3 scripts/check/compare_cases.py [MTP_BINARY] [CASE_DIR]
A developer tool (numpy only); the Swift tests do the same check in CI.
"""
import json, os, subprocess, sys, tempfile
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from mtp_reference import read_safetensors  # noqa: E402

binary = sys.argv[1] if len(sys.argv) > 1 else ".build/release/mtp"
folder = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/cases"
fails = 0
names = sorted(f[:-len(".safetensors")] for f in os.listdir(folder)
               if f.endswith(".safetensors") and not f.endswith(".expected.safetensors"))
for name in names:
    exp_t, exp_m = read_safetensors(os.path.join(folder, name + ".expected.safetensors"))
    with tempfile.TemporaryDirectory() as d:
        gpath = os.path.join(d, "g.safetensors")
        p = subprocess.run([binary, "loss", os.path.join(folder, name + ".safetensors"), "--grads", gpath],
                           capture_output=True, text=True)
        problems = []
        if "error" in exp_m:
            if p.returncode != 1 or p.stdout or exp_m["error"] not in p.stderr:
                problems.append(f"expected error containing {exp_m['error']!r}, got rc={p.returncode} out={p.stdout.strip()!r} err={p.stderr.strip()!r}")
        elif p.returncode != 0:
            problems.append(f"failed: {p.stderr.strip()}")
        else:
            out = json.loads(p.stdout)
            rtol, atol = float(exp_m["rtol"]), float(exp_m["atol"])
            grtol, gatol = float(exp_m["grad_rtol"]), float(exp_m["grad_atol"])
            want = float(exp_t["loss"].values)
            if not np.isclose(out["loss"], want, rtol=rtol, atol=atol):
                problems.append(f"loss {out['loss']} vs {want}")
            if "per_depth" in exp_t and not np.allclose(out.get("per_depth", []), exp_t["per_depth"].values, rtol=rtol, atol=atol):
                problems.append(f"per_depth {out.get('per_depth')} vs {exp_t['per_depth'].values}")
            got, _ = read_safetensors(gpath)
            for k, t in exp_t.items():
                if not k.startswith("grad."):
                    continue
                if k not in got:
                    if np.any(t.values != 0):
                        problems.append(f"missing {k}")
                    continue
                g = got[k].values.astype(np.float64)
                if g.shape != t.values.shape or not np.allclose(g, t.values, rtol=grtol, atol=gatol):
                    problems.append(f"{k} max diff {np.max(np.abs(g - t.values)) if g.shape == t.values.shape else g.shape}")
            for k in got:
                if k not in exp_t and np.any(got[k].values != 0):
                    problems.append(f"unexpected non-zero {k}")
        if problems:
            fails += 1
            print(f"FAIL {name}: " + "; ".join(problems))
print(f"{len(names) - fails} passed, {fails} failed")
