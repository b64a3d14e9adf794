#!/usr/bin/env python3
"""A/B of jvhost targets built from different trees, driven by one client, interleaved.

Usage: bench/ab-targets.py TREE_A TREE_B [TREE_C ...]     (each TREE has target/jvhost.jar: mvn package)
       a TREE may be TREE@-Dprop=value[,-Dprop2=value]: that tree's target with those JVM options
Env:   ROUNDS (3), T (5 s per run), QDS ("1,32,128"), OUT (/tmp/jvhost-ab), CLIENT (this tree's ./jvhost),
       BDEV (null | malloc), RW (randread), BS (4k)

Each round starts every tree's target in turn (order rotating by round) with a 1 GiB null bdev
(4 KiB blocks) on core 0 (`serve --busy-poll`), warms it up (QD32, 3 s, discarded), runs
`jvhost bench` 4K randread at each QD on core 1, and stops it. Prints one JSON record per run
and, at the end, medians per tree and QD (IOPS, p50 latency) with the median of per-round ratios
against the first tree. Runs go through bench/quietgate.py (a run disturbed by other processes
is repeated; records carry "others_cpus" and "disturbed")."""
import json, os, signal, statistics as st, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quietgate  # repeats a run when anything else took CPU during it (QUIET_* env)
trees = sys.argv[1:]
if len(trees) < 2: raise SystemExit(__doc__)
ROUNDS = int(os.environ.get("ROUNDS", "3")); T = int(os.environ.get("T", "5"))
QDS = [int(q) for q in os.environ.get("QDS", "1,32,128").split(",")]
BDEV = os.environ.get("BDEV", "null")        # null, or malloc (512 MiB, written once before the first run)
RW = os.environ.get("RW", "randread"); BS = os.environ.get("BS", "4k")
D = os.environ.get("OUT", "/tmp/jvhost-ab"); os.makedirs(D, exist_ok=True)
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.environ.get("CLIENT", f"{HERE}/jvhost")
JAVA = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if "JAVA_HOME" in os.environ else "java"
out = open(f"{D}/results.jsonl", "a")

def start(spec):
    # TREE or TREE@-Dprop=value,-Dother=value: the same tree with JVM options (knob A/B)
    tree, _, opts = spec.partition("@")
    sock = f"{D}/jv.null"
    if os.path.exists(sock): os.unlink(sock)
    p = subprocess.Popen([JAVA, "--enable-native-access=ALL-UNNAMED", *[o for o in opts.split(",") if o], "-jar", f"{tree}/target/jvhost.jar", "serve", "-S", D,
                          *(["--null", "1G"] if BDEV == "null" else ["--malloc", "512M"]), "--block-size", "4096", "--ctrlr", "jv.null", "--num-queues", "1", "--cpumask", "0x1",
                          "--busy-poll", "--no-rpc", "-L", "warn"], stdout=open(f"{D}/target.log", "a"), stderr=subprocess.STDOUT)
    end = time.time() + 60
    while not os.path.exists(sock):
        if p.poll() is not None: raise SystemExit(f"target from {tree} exited; see {D}/target.log")
        if time.time() > end: raise SystemExit(f"no socket from {tree}")
        time.sleep(0.2)
    return p, sock

def bench(sock, qd, t, ramp=1, pid=None, rw=None, bs=None):
    rc, out_, err, info = quietgate.run([CLIENT, "bench", "--socket", sock, "--hugepages", "-w", rw or RW, "--bs", bs or BS, "--qd", str(qd),
                        "--time", str(t), "--ramp", str(ramp), "--cpu", "1", "--json", "--quiet"], target_pid=pid, timeout=120, label=f"qd{qd}")
    if rc != 0: raise SystemExit("jvhost bench failed:\n" + out_ + err)
    j = json.loads(out_); j["gate"] = info
    return j

recs = []
for rnd in range(ROUNDS):
    order = trees[rnd % len(trees):] + trees[:rnd % len(trees)]
    for tree in order:
        p, sock = start(tree)
        try:
            if BDEV == "malloc": bench(sock, 32, 3, pid=p.pid, rw="write", bs="128k")  # every block written once
            bench(sock, 32, 3, pid=p.pid)
            for qd in QDS:
                j = bench(sock, qd, T, pid=p.pid)
                rec = {"round": rnd + 1, "tree": tree, "qd": qd, "iops": j["iops"], "p50_us": j.get("p50Us"),
                       "t": time.strftime("%H:%M:%S"), "load1": os.getloadavg()[0], **j["gate"]}
                recs.append(rec); print(json.dumps(rec), flush=True); out.write(json.dumps(rec) + "\n"); out.flush()
        finally:
            p.send_signal(signal.SIGTERM)
            try: p.wait(20)
            except subprocess.TimeoutExpired: p.kill(); p.wait()

print(f"\n| tree | QD | IOPS median (runs) | p50 µs median | IOPS / {os.path.basename(trees[0].rstrip('/'))} (median of per-round ratios) |")
print("|---|---|---|---|---|")
for qd in QDS:
    base = {r["round"]: r["iops"] for r in recs if r["tree"] == trees[0] and r["qd"] == qd}
    for tree in trees:
        rs = [r for r in recs if r["tree"] == tree and r["qd"] == qd]
        iops = [r["iops"] for r in rs]; p50 = [r["p50_us"] for r in rs if r["p50_us"] is not None]
        ratios = [r["iops"] / base[r["round"]] for r in rs if r["round"] in base]
        print(f"| {tree} | {qd} | {st.median(iops)/1e3:.0f} k ({', '.join(f'{x/1e3:.0f}' for x in iops)}) | "
              f"{st.median(p50):.2f} | {st.median(ratios):.2f} |" if p50 else
              f"| {tree} | {qd} | {st.median(iops)/1e3:.0f} k | – | {st.median(ratios):.2f} |")
