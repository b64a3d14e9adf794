#!/usr/bin/env python3
"""Usage: SPDK=/work/spdk OUT=/tmp/sbs bench/spdk-side-by-side.py [ROUNDS]   (then bench/spdk-side-by-side-table.py OUT/results.jsonl)
Side-by-side: jvhost bench --hugepages vs SPDK bdevperf, on jvhost and on SPDK's vhost target.
Null bdev (1 GiB, 4 KiB blocks), 4K randread QD1/32/128, 3 s runs, targets on core 0, clients on core 1.
Both targets run the whole time; the one not being measured is frozen (SIGSTOP) so that only one
spins on core 0. Per round and QD: target A with both clients, then target B (order alternates)."""
import json, os, subprocess, sys, time, signal
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SPDK = os.environ.get("SPDK", "/work/spdk"); JV = os.path.dirname(os.path.dirname(os.path.abspath(__file__))); D = os.environ.get("OUT", "/tmp/jvhost-spdk-side-by-side"); T = 3
os.makedirs(D, exist_ok=True)
QDS = [1, 32, 128]
env = dict(os.environ, LD_LIBRARY_PATH=f"{SPDK}/build/lib")
out = open(f"{D}/results.jsonl", "a")

def wait_sock(p, proc, t=60):
    end = time.time() + t
    while not os.path.exists(p):
        if proc.poll() is not None: raise SystemExit(f"target exited: {proc.args}")
        if time.time() > end: raise SystemExit(f"no socket {p}")
        time.sleep(0.2)

def bdevperf(sock, qd, t=T):
    cfg = f"{D}/bp.json"
    json.dump({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_virtio_attach_controller", "params": {"name": "V0", "trtype": "user", "traddr": sock,
         "dev_type": "blk", "vq_count": 1, "vq_size": 512}}, {"method": "bdev_wait_for_examine"}]}]}, open(cfg, "w"))
    r = subprocess.run([f"{SPDK}/build/examples/bdevperf", "-u", "-m", "0x2", "-s", "1024", "-g", "-r", f"{D}/bp.sock",
                        "--json", cfg, "-q", str(qd), "-o", "4096", "-w", "randread", "-t", str(t)],
                       env=env, capture_output=True, text=True, timeout=60)
    for line in r.stdout.replace("\r", "\n").splitlines():
        if line.strip().startswith("Total"):
            return float(line.split(":")[1].split()[0])
    raise SystemExit("bdevperf: no Total line:\n" + r.stdout[-2000:] + r.stderr[-2000:])

def jvbench(sock, qd):
    r = subprocess.run([f"{JV}/jvhost", "bench", "--socket", sock, "--hugepages", "-w", "randread", "--bs", "4k", "--qd", str(qd),
                        "--time", str(T), "--ramp", "1", "--cpu", "1", "--json", "--quiet"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0: raise SystemExit("jvhost bench failed:\n" + r.stdout + r.stderr)
    return json.loads(r.stdout)["iops"]

def start_jvhost():
    for f in ("jv.null",):
        try: os.unlink(f"{D}/{f}")
        except FileNotFoundError: pass
    p = subprocess.Popen([f"{JV}/jvhost", "serve", "-S", D, "--null", "1G", "--block-size", "4096", "--ctrlr", "jv.null",
                          "--num-queues", "1", "--cpumask", "0x1", "--busy-poll", "--no-rpc", "-L", "warn"],
                         stdout=open(f"{D}/jvhost.log", "a"), stderr=subprocess.STDOUT)
    wait_sock(f"{D}/jv.null", p)
    return p, f"{D}/jv.null"

def start_spdk():
    for f in ("spdk.sock", "sp.null"):
        try: os.unlink(f"{D}/{f}")
        except FileNotFoundError: pass
    p = subprocess.Popen([f"{SPDK}/build/bin/vhost", "-u", "-m", "0x1", "-s", "1024", "-S", D, "-r", f"{D}/spdk.sock"],
                         env=env, stdout=open(f"{D}/spdk.log", "a"), stderr=subprocess.STDOUT)
    wait_sock(f"{D}/spdk.sock", p)
    rpc = [f"{SPDK}/scripts/rpc.py", "-s", f"{D}/spdk.sock"]
    subprocess.run(rpc + ["bdev_null_create", "Null0", "1024", "4096"], check=True, capture_output=True)
    subprocess.run(rpc + ["vhost_create_blk_controller", "--cpumask", "0x1", "sp.null", "Null0"], check=True, capture_output=True)
    wait_sock(f"{D}/sp.null", p)
    return p, f"{D}/sp.null"

def stop(p):
    p.send_signal(signal.SIGTERM)
    try: p.wait(20)
    except subprocess.TimeoutExpired: p.kill(); p.wait()

# Both targets stay up (jvhost stays warm); the one not measured is frozen with SIGSTOP so only
# one target spins on core 0 at a time. Every (qd) step measures both targets back to back, the
# order alternating by round, so each ratio comes from runs seconds apart.
jv, jv_sock = start_jvhost()
sp, sp_sock = start_spdk()
targets = {"jvhost": (jv, jv_sock), "spdk": (sp, sp_sock)}
def only(name):
    for n, (p, _) in targets.items():
        p.send_signal(signal.SIGCONT if n == name else signal.SIGSTOP)
    time.sleep(0.2)
try:
    for name in ("jvhost", "spdk"):
        only(name)
        bdevperf(targets[name][1], 32, 3)  # warm-up (JIT for jvhost), discarded
    for rnd in range(ROUNDS):
        for qd in QDS:
            order = ("jvhost", "spdk") if rnd % 2 == 0 else ("spdk", "jvhost")
            for tname in order:
                only(tname)
                for cname, fn in (("jvbench", jvbench), ("bdevperf", bdevperf)):
                    iops = fn(targets[tname][1], qd)
                    rec = {"round": rnd + 1, "target": tname, "client": cname, "qd": qd, "iops": iops, "t": time.strftime("%H:%M:%S"),
                           "load1": os.getloadavg()[0]}
                    print(json.dumps(rec), flush=True); out.write(json.dumps(rec) + "\n"); out.flush()
finally:
    for p, _ in targets.values():
        p.send_signal(signal.SIGCONT)
        stop(p)
