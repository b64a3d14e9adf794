#!/usr/bin/env python3
"""Summarises GuestCopyBench rounds (JMH JSON files, one per round): per (size, pattern) and
variant the median ns per copy, GB/s, and the median of per-round ratios time(variant) /
time(MemorySegment.copy, default flags) (below 1 = faster)."""
import json, statistics as st, sys
from collections import defaultdict
BASE = "segmentCopy"
t = defaultdict(dict)  # (size, pattern, variant) -> {round: ns}
for r, f in enumerate(sys.argv[1:]):
    for b in json.load(open(f)):
        name = b["benchmark"].split("GuestCopyBench.")[1]
        p = b["params"]
        t[(int(p["size"]), p["pattern"], name)][r] = b["primaryMetric"]["score"]
keys = sorted(t, key=lambda k: (k[0], k[1], k[2] != BASE, k[2]))
print("| size | pattern | variant | rounds | ns per copy (median, min–max) | GB/s | time / segmentCopy (median of rounds, min–max) |")
print("|---|---|---|---|---|---|---|")
for k in keys:
    size, pat, v = k
    ns = t[k]; base = t.get((size, pat, BASE), {})
    ratios = [ns[r] / base[r] for r in ns if r in base]
    med = st.median(ns.values())
    rs = f"{st.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else ""
    print(f"| {size // 1024} KiB | {pat} | {v} | {len(ns)} | {med:.0f} ({min(ns.values()):.0f}–{max(ns.values()):.0f}) | {size / med:.1f} | {rs} |")
