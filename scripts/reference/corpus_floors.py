#!/usr/bin/env python3
"""Independent float64 NumPy reference for the synthetic corpus's exact floors
(Sources/Training/Corpus.swift, Corpus+Floors.swift).

    python3 scripts/reference/corpus_floors.py            # print the default floors, write the Swift fixture
    python3 scripts/reference/corpus_floors.py --check    # verify the fixture on disk is up to date

The process parameters are rebuilt here from the seed with the recipe in the
DocC of `SyntheticCorpus` (SplitMix64, partial Fisher-Yates, Zipf-like body
weights): only + * / on doubles, so the matrix is reproduced bit for bit.

The floors are computed by a different route from the Swift code: Swift sums
the per-position entropy h_p weighted by the survival P(L > p); here every
document length L is enumerated, and the expected summed target entropy and the
expected target count are accumulated over L, with the position marginals from
NumPy matrix powers. Documents for the "floors on a given set" check are drawn
with NumPy's own generator (not the Swift sampler).

Writes Tests/TrainingTests/CorpusReferenceValues.swift (a few KB).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUTPUT = os.path.join(ROOT, "Tests", "TrainingTests", "CorpusReferenceValues.swift")

MASK = (1 << 64) - 1
OPENINGS = 8          # SyntheticCorpus.openingCount
COUNTDOWN_LEAK = 0.02  # SyntheticCorpus.countdownLeak
SUCCESSORS = 8        # SyntheticCorpus.bodySuccessorCount
BODY_LEAK = 0.05      # SyntheticCorpus.bodyLeak

# (vocabulary size, min length, max length, seed, depths, documents in the set check)
CONFIGS = [
    (64, 16, 48, 0, 4, 40),   # the defaults
    (32, 4, 12, 7, 3, 60),
    (24, 2, 5, 123, 4, 50),   # depths 3 has no targets (k + 2 >= max length): NaN
]


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def unit(self) -> float:
        return float(self.next() >> 11) * 2.0 ** -53


def build(v: int, seed: int):
    """Start distribution [V] and transition matrix [V, V] of the process."""
    n, k, m = OPENINGS, SUCCESSORS, v - 2 * OPENINGS
    rng = SplitMix64(seed)
    start = np.zeros(v)
    start[:n] = 1.0 / n
    p = np.zeros((v, v))
    for x in range(v):
        if x < n or n < x < 2 * n:
            p[x, 2 * n:] = COUNTDOWN_LEAK / m
            p[x, x + n if x < n else x - 1] += 1 - COUNTDOWN_LEAK
            continue
        slots = list(range(m))
        for i in range(k):
            j = i + rng.next() % (m - i)
            slots[i], slots[j] = slots[j], slots[i]
        weights = [(0.5 + rng.unit()) / (i + 1) for i in range(k)]
        total = 0.0
        for w in weights:
            total += w
        p[x, 2 * n:] = BODY_LEAK / m
        for i in range(k):
            p[x, 2 * n + slots[i]] = BODY_LEAK / m + (1 - BODY_LEAK) * weights[i] / total
    return start, p


def row_entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=1)


def exact(v: int, lo: int, hi: int, seed: int, depths: int):
    """Floors, greedy accuracies (main + depths) and unigram entropy, by enumerating lengths."""
    start, p = build(v, seed)
    h_row, g_row = row_entropy(p), p.max(axis=1)
    marg = [start @ np.linalg.matrix_power(p, t) for t in range(hi)]  # distribution of X_t
    firsts = [1] + [k + 2 for k in range(depths)]
    ent_sum, acc_sum, count = np.zeros(len(firsts)), np.zeros(len(firsts)), np.zeros(len(firsts))
    freq = np.zeros(v)
    for length in range(lo, hi + 1):
        freq += sum(marg[t] for t in range(length))
        for j, first in enumerate(firsts):
            for pos in range(first, length):
                ent_sum[j] += marg[pos - 1] @ h_row
                acc_sum[j] += marg[pos - 1] @ g_row
                count[j] += 1
    with np.errstate(invalid="ignore"):
        floors, greedy = ent_sum / count, acc_sum / count
    u = freq / freq.sum()
    unigram = float(-(u[u > 0] * np.log(u[u > 0])).sum())
    return start, p, floors, greedy, unigram


def on_documents(p: np.ndarray, docs, depths: int):
    """Mean true conditional entropy, max probability and -log P at each set of targets."""
    h_row, g_row = row_entropy(p), p.max(axis=1)
    out = []
    for table in (lambda a, b: h_row[a], lambda a, b: g_row[a], lambda a, b: -np.log(p[a, b])):
        means = []
        for first in [1] + [k + 2 for k in range(depths)]:
            vals = [table(d[t - 1], d[t]) for d in docs for t in range(first, len(d))]
            means.append(float(np.mean(vals)) if vals else float("nan"))
        out.append(means)
    return out


def sample_documents(start, p, lo, hi, count, seed):
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(count):
        length = int(rng.integers(lo, hi + 1))
        doc = [int(rng.choice(len(start), p=start))]
        for _ in range(length - 1):
            doc.append(int(rng.choice(len(start), p=p[doc[-1]])))
        docs.append(doc)
    return docs


def checksum(p: np.ndarray) -> float:
    v = p.shape[0]
    idx = np.arange(v * v).reshape(v, v)
    return float((p * ((idx % 97) + 1)).sum())


def swift_double(x: float) -> str:
    return ".nan" if x != x else repr(float(x))


def swift_doubles(xs) -> str:
    return "[" + ", ".join(swift_double(x) for x in xs) + "]"


def generate() -> tuple[str, list]:
    lines = [
        "// Generated by scripts/reference/corpus_floors.py; do not edit.",
        "// Exact floors of SyntheticCorpus from an independent float64 NumPy computation.",
        "",
        "struct CorpusReference {",
        "    let vocabularySize: Int",
        "    let documentLengths: ClosedRange<Int>",
        "    let seed: UInt64",
        "    let depths: Int",
        "    /// Σ P[x, y] · ((x·V + y) mod 97 + 1).",
        "    let transitionChecksum: Double",
        "    /// Rows c₁ (token 8) and V − 1 of the transition matrix, to compare bit for bit.",
        "    let rows: [Int: [Double]]",
        "    /// main, then depth 0 ..< depths.",
        "    let floors: [Double]",
        "    let greedyAccuracy: [Double]",
        "    let unigramEntropy: Double",
        "    /// Documents drawn with NumPy, and the values on them (main, then depths).",
        "    let documents: [[Int32]]",
        "    let documentFloors: [Double]",
        "    let documentGreedyAccuracy: [Double]",
        "    let documentTrueCrossEntropy: [Double]",
        "}",
        "",
        "let corpusReferences: [CorpusReference] = [",
    ]
    summary = []
    for (v, lo, hi, seed, depths, ndocs) in CONFIGS:
        start, p, floors, greedy, unigram = exact(v, lo, hi, seed, depths)
        docs = sample_documents(start, p, lo, hi, ndocs, seed + 1000)
        doc_floor, doc_greedy, doc_ce = on_documents(p, docs, depths)
        summary.append((v, lo, hi, seed, floors, greedy, unigram))
        lines += [
            "    CorpusReference(",
            f"        vocabularySize: {v}, documentLengths: {lo}...{hi}, seed: {seed}, depths: {depths},",
            f"        transitionChecksum: {swift_double(checksum(p))},",
            f"        rows: [{OPENINGS}: {swift_doubles(p[OPENINGS])},",
            f"               {v - 1}: {swift_doubles(p[v - 1])}],",
            f"        floors: {swift_doubles(floors)},",
            f"        greedyAccuracy: {swift_doubles(greedy)},",
            f"        unigramEntropy: {swift_double(unigram)},",
            "        documents: [",
        ]
        lines += ["            [" + ", ".join(str(t) for t in d) + "]," for d in docs]
        lines += [
            "        ],",
            f"        documentFloors: {swift_doubles(doc_floor)},",
            f"        documentGreedyAccuracy: {swift_doubles(doc_greedy)},",
            f"        documentTrueCrossEntropy: {swift_doubles(doc_ce)}",
            "    ),",
        ]
    lines += ["]", ""]
    return "\n".join(lines), summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="verify the fixture is up to date instead of writing it")
    args = ap.parse_args()
    text, summary = generate()
    for (v, lo, hi, seed, floors, greedy, unigram) in summary:
        print(f"V={v} lengths {lo}...{hi} seed {seed}: floors main {floors[0]:.4f} depths "
              + " ".join(f"{x:.4f}" for x in floors[1:])
              + f" | greedy main {greedy[0]:.4f} depths " + " ".join(f"{x:.4f}" for x in greedy[1:])
              + f" | unigram {unigram:.4f} (gap {unigram - floors[0]:.3f})")
    if args.check:
        with open(OUTPUT) as f:
            if f.read() != text:
                print(f"{OUTPUT} is out of date: rerun without --check", file=sys.stderr)
                return 1
        print("fixture up to date")
        return 0
    with open(OUTPUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUTPUT, ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
