import json, statistics as st, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
def vals(t, c, qd): return [r["iops"] for r in sorted(recs, key=lambda r: r["round"]) if r["target"] == t and r["client"] == c and r["qd"] == qd]
def fmt(v): return f"{st.median(v)/1e6:.2f} M ({min(v)/1e6:.2f}–{max(v)/1e6:.2f})"
def ratio(a, b):
    rs = [x / y for x, y in zip(a, b)]
    return f"{st.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"
print("| null 4K randread | jvhost bench → jvhost | bdevperf → jvhost | jvhost bench → SPDK | bdevperf → SPDK | jvhost/SPDK, bdevperf | jvhost/SPDK, jvhost bench | jvhost bench/bdevperf on jvhost | jvhost bench/bdevperf on SPDK |")
print("|---|---|---|---|---|---|---|---|---|")
for qd in (1, 32, 128):
    a, b, c, d = vals("jvhost", "jvbench", qd), vals("jvhost", "bdevperf", qd), vals("spdk", "jvbench", qd), vals("spdk", "bdevperf", qd)
    print(f"| QD{qd} | {fmt(a)} | {fmt(b)} | {fmt(c)} | {fmt(d)} | {ratio(b, d)} | {ratio(a, c)} | {ratio(a, b)} | {ratio(c, d)} |")
