#!/usr/bin/env python3
"""Markdown table from spdk-side-by-side.py records: medians (min..max) per client/target and
workload, and medians of per-round ratios. Usage: spdk-side-by-side-table.py RESULTS.jsonl [MAX_LOAD]
With MAX_LOAD, only (round, workload) groups whose four runs all saw a 1-minute load average <= MAX_LOAD.
Records without a workload name (the first sittings) are null 4K randread at their QD."""
import json, statistics as st, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for r in recs:
    r.setdefault("wl", f"null-4k-randread-qd{r['qd']}")
    r.setdefault("bs", 4096)
max_load = float(sys.argv[2]) if len(sys.argv) > 2 else None
def group_ok(rnd, wl):
    g = [r for r in recs if r["round"] == rnd and r["wl"] == wl]
    return len(g) == 4 and (max_load is None or max(r["load1"] for r in g) <= max_load)
def vals(t, c, wl):
    return [r["iops"] for r in sorted(recs, key=lambda r: r["round"])
            if r["target"] == t and r["client"] == c and r["wl"] == wl and group_ok(r["round"], wl)]
def fmt(v, bs):
    if not v: return "–"
    if bs >= 65536:
        g = lambda x: x * bs / 1e9
        return f"{g(st.median(v)):.1f} GB/s ({g(min(v)):.1f}–{g(max(v)):.1f})"
    return f"{st.median(v)/1e6:.2f} M ({min(v)/1e6:.2f}–{max(v)/1e6:.2f})"
def ratio(a, b):
    rs = [x / y for x, y in zip(a, b)]
    return f"{st.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})" if rs else "–"
order = []
for r in recs:
    if r["wl"] not in order: order.append(r["wl"])
print("| workload | rounds | jvhost bench → jvhost | bdevperf → jvhost | jvhost bench → SPDK | bdevperf → SPDK | jvhost/SPDK, bdevperf | jvhost/SPDK, jvhost bench | jvhost bench/bdevperf on jvhost | jvhost bench/bdevperf on SPDK |")
print("|---|---|---|---|---|---|---|---|---|---|")
for wl in order:
    bs = next(r["bs"] for r in recs if r["wl"] == wl)
    a, b, c, d = vals("jvhost", "jvbench", wl), vals("jvhost", "bdevperf", wl), vals("spdk", "jvbench", wl), vals("spdk", "bdevperf", wl)
    print(f"| {wl} | {len(a)} | {fmt(a, bs)} | {fmt(b, bs)} | {fmt(c, bs)} | {fmt(d, bs)} | {ratio(b, d)} | {ratio(a, c)} | {ratio(a, b)} | {ratio(c, d)} |")
