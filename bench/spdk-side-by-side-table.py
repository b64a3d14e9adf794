#!/usr/bin/env python3
"""Markdown table from spdk-side-by-side.py records: medians (min..max) per client/target and QD,
and medians of per-round ratios. Usage: spdk-side-by-side-table.py RESULTS.jsonl [MAX_LOAD]
With MAX_LOAD, only (round, QD) groups whose four runs all saw a 1-minute load average <= MAX_LOAD."""
import json, statistics as st, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
max_load = float(sys.argv[2]) if len(sys.argv) > 2 else None
def group_ok(rnd, qd):
    g = [r for r in recs if r["round"] == rnd and r["qd"] == qd]
    return len(g) == 4 and (max_load is None or max(r["load1"] for r in g) <= max_load)
def vals(t, c, qd):
    return [r["iops"] for r in sorted(recs, key=lambda r: r["round"])
            if r["target"] == t and r["client"] == c and r["qd"] == qd and group_ok(r["round"], qd)]
def fmt(v): return f"{st.median(v)/1e6:.2f} M ({min(v)/1e6:.2f}–{max(v)/1e6:.2f})" if v else "–"
def ratio(a, b):
    rs = [x / y for x, y in zip(a, b)]
    return f"{st.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})" if rs else "–"
print("| null 4K randread | rounds | jvhost bench → jvhost | bdevperf → jvhost | jvhost bench → SPDK | bdevperf → SPDK | jvhost/SPDK, bdevperf | jvhost/SPDK, jvhost bench | jvhost bench/bdevperf on jvhost | jvhost bench/bdevperf on SPDK |")
print("|---|---|---|---|---|---|---|---|---|---|")
for qd in (1, 32, 128):
    a, b, c, d = vals("jvhost", "jvbench", qd), vals("jvhost", "bdevperf", qd), vals("spdk", "jvbench", qd), vals("spdk", "bdevperf", qd)
    print(f"| QD{qd} | {len(a)} | {fmt(a)} | {fmt(b)} | {fmt(c)} | {fmt(d)} | {ratio(b, d)} | {ratio(a, c)} | {ratio(a, b)} | {ratio(c, d)} |")
