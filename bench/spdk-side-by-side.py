#!/usr/bin/env python3
"""Usage: SPDK=/work/spdk OUT=/tmp/sbs bench/spdk-side-by-side.py [ROUNDS]   (then bench/spdk-side-by-side-table.py OUT/results.jsonl)
Side-by-side: jvhost bench --hugepages vs SPDK bdevperf, on jvhost and on SPDK's vhost target.
The rows of the issue "Reach SPDK's speed": null bdev (1 GiB, 4 KiB blocks) 4K randread QD1/32/128,
malloc bdev (512 MiB, 4 KiB blocks, written once before the first round) 4K randread QD32 and
128K read QD32; 3 s runs, one queue of 512, targets on core 0, clients on core 1.
Both targets run the whole time, each with a null and a malloc controller; the one not being
measured is frozen (SIGSTOP) so that only one spins on core 0. Per round and workload: target A
with both clients, then target B (order alternates by round). WORKLOADS=null (env) keeps only
the null rows, WORKLOADS=malloc only the malloc rows. Each run goes through bench/quietgate.py: a
run during which other processes took more than QUIET_MAX_OTHERS CPUs (default 0.05) is repeated
(QUIET_RETRIES, default 4), and every record carries its "others_cpus" and "disturbed" flag."""
import json, os, subprocess, sys, time, signal
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quietgate  # repeats a run when anything else took CPU during it (QUIET_* env)
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SPDK = os.environ.get("SPDK", "/work/spdk"); JV = os.path.dirname(os.path.dirname(os.path.abspath(__file__))); D = os.environ.get("OUT", "/tmp/jvhost-spdk-side-by-side"); T = int(os.environ.get("T", "3"))
os.makedirs(D, exist_ok=True)
# (name, bdev, rw, block size, qd)
WORKLOADS = [("null-4k-randread-qd1", "null", "randread", 4096, 1), ("null-4k-randread-qd32", "null", "randread", 4096, 32),
             ("null-4k-randread-qd128", "null", "randread", 4096, 128), ("malloc-4k-randread-qd32", "malloc", "randread", 4096, 32),
             ("malloc-128k-read-qd32", "malloc", "read", 131072, 32)]
if os.environ.get("WORKLOADS") == "null":
    WORKLOADS = [w for w in WORKLOADS if w[1] == "null"]
elif os.environ.get("WORKLOADS") == "malloc":  # only the malloc rows (the guest-data copy A/B)
    WORKLOADS = [w for w in WORKLOADS if w[1] == "malloc"]
env = dict(os.environ, LD_LIBRARY_PATH=f"{SPDK}/build/lib")
out = open(f"{D}/results.jsonl", "a")

def wait_sock(p, proc, t=60):
    end = time.time() + t
    while not os.path.exists(p):
        if proc.poll() is not None: raise SystemExit(f"target exited: {proc.args}")
        if time.time() > end: raise SystemExit(f"no socket {p}")
        time.sleep(0.2)

CUR = {"pid": None}  # the target being measured (its CPU time is not "others")
INFO = {}

def bdevperf(sock, qd, t=T, rw="randread", bs=4096):
    cfg = f"{D}/bp.json"
    json.dump({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_virtio_attach_controller", "params": {"name": "V0", "trtype": "user", "traddr": sock,
         "dev_type": "blk", "vq_count": 1, "vq_size": 512}}, {"method": "bdev_wait_for_examine"}]}]}, open(cfg, "w"))
    rc, stdout, stderr, INFO["last"] = quietgate.run([f"{SPDK}/build/examples/bdevperf", "-u", "-m", "0x2", "-s", "1024", "-g", "-r", f"{D}/bp.sock",
                        "--json", cfg, "-q", str(qd), "-o", str(bs), "-w", rw, "-t", str(t)],
                       target_pid=CUR["pid"], timeout=60, label=f"bdevperf qd{qd}", env=env)
    for line in stdout.replace("\r", "\n").splitlines():
        if line.strip().startswith("Total"):
            return float(line.split(":")[1].split()[0])
    raise SystemExit("bdevperf: no Total line:\n" + stdout[-2000:] + stderr[-2000:])

def jvbench(sock, qd, rw="randread", bs=4096):
    rc, stdout, stderr, INFO["last"] = quietgate.run([f"{JV}/jvhost", "bench", "--socket", sock, "--hugepages", "-w", rw, "--bs", str(bs), "--qd", str(qd),
                        "--time", str(T), "--ramp", "1", "--cpu", "1", "--json", "--quiet"], target_pid=CUR["pid"], timeout=60, label=f"jvhost bench qd{qd}")
    if rc != 0: raise SystemExit("jvhost bench failed:\n" + stdout + stderr)
    return json.loads(stdout)["iops"]

def jvbench_b(sock, qd, rw="randread", bs=4096):
    # A second jvhost bench variant (JVBENCH_B_OPTS: JVM properties, e.g. a client knob), run
    # right after the first on the same target, for client A/Bs.
    prev = os.environ.get("JVHOST_JAVA_OPTS")
    os.environ["JVHOST_JAVA_OPTS"] = os.environ["JVBENCH_B_OPTS"]
    try:
        return jvbench(sock, qd, rw=rw, bs=bs)
    finally:
        if prev is None: del os.environ["JVHOST_JAVA_OPTS"]
        else: os.environ["JVHOST_JAVA_OPTS"] = prev

CLIENTS = (("jvbench", jvbench), ("bdevperf", bdevperf))
if os.environ.get("JVBENCH_B_OPTS"):
    CLIENTS = (("jvbench", jvbench), ("jvbench-b", jvbench_b), ("bdevperf", bdevperf))

def start_jvhost():
    for f in ("jv.null", "jv.malloc"):
        try: os.unlink(f"{D}/{f}")
        except FileNotFoundError: pass
    cfg = f"{D}/jvhost.json"
    json.dump({"subsystems": [
        {"subsystem": "bdev", "config": [
            {"method": "bdev_null_create", "params": {"name": "Null0", "num_blocks": 262144, "block_size": 4096}},
            {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 131072, "block_size": 4096}}]},
        {"subsystem": "vhost_blk", "config": [
            {"method": "vhost_create_blk_controller", "params": {"ctrlr": "jv.null", "dev_name": "Null0", "cpumask": "0x1"}},
            {"method": "vhost_create_blk_controller", "params": {"ctrlr": "jv.malloc", "dev_name": "Malloc0", "cpumask": "0x1"}}]}]},
        open(cfg, "w"))
    p = subprocess.Popen([f"{JV}/jvhost", "serve", "-S", D, "--json", cfg, "--cpumask", "0x1", "--busy-poll", "--no-rpc", "-L", "warn"],
                         stdout=open(f"{D}/jvhost.log", "a"), stderr=subprocess.STDOUT)
    wait_sock(f"{D}/jv.null", p)
    wait_sock(f"{D}/jv.malloc", p)
    return p, {"null": f"{D}/jv.null", "malloc": f"{D}/jv.malloc"}

def start_spdk():
    for f in ("spdk.sock", "sp.null", "sp.malloc"):
        try: os.unlink(f"{D}/{f}")
        except FileNotFoundError: pass
    p = subprocess.Popen([f"{SPDK}/build/bin/vhost", "-u", "-m", "0x1", "-s", "1024", "-S", D, "-r", f"{D}/spdk.sock"],
                         env=env, stdout=open(f"{D}/spdk.log", "a"), stderr=subprocess.STDOUT)
    wait_sock(f"{D}/spdk.sock", p)
    rpc = [f"{SPDK}/scripts/rpc.py", "-s", f"{D}/spdk.sock"]
    subprocess.run(rpc + ["bdev_null_create", "Null0", "1024", "4096"], check=True, capture_output=True)
    subprocess.run(rpc + ["bdev_malloc_create", "-b", "Malloc0", "512", "4096"], check=True, capture_output=True)
    subprocess.run(rpc + ["vhost_create_blk_controller", "--cpumask", "0x1", "sp.null", "Null0"], check=True, capture_output=True)
    subprocess.run(rpc + ["vhost_create_blk_controller", "--cpumask", "0x1", "sp.malloc", "Malloc0"], check=True, capture_output=True)
    wait_sock(f"{D}/sp.null", p)
    wait_sock(f"{D}/sp.malloc", p)
    return p, {"null": f"{D}/sp.null", "malloc": f"{D}/sp.malloc"}

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
    CUR["pid"] = targets[name][0].pid
    time.sleep(0.2)
try:
    for name in ("jvhost", "spdk"):
        only(name)
        bdevperf(targets[name][1]["null"], 32, 3)  # warm-up (JIT for jvhost), discarded
        # Every block of the malloc disks written once, so no run reads never-touched pages.
        bdevperf(targets[name][1]["malloc"], 32, 3, "write", 131072)
    for rnd in range(ROUNDS):
        for wl, bdev, rw, bs, qd in WORKLOADS:
            order = ("jvhost", "spdk") if rnd % 2 == 0 else ("spdk", "jvhost")
            for tname in order:
                only(tname)
                for cname, fn in CLIENTS:
                    sock = targets[tname][1][bdev]
                    iops = fn(sock, qd, rw=rw, bs=bs)
                    rec = {"round": rnd + 1, "wl": wl, "target": tname, "client": cname, "qd": qd, "bs": bs, "iops": iops,
                           "t": time.strftime("%H:%M:%S"), "load1": os.getloadavg()[0], **INFO["last"]}
                    print(json.dumps(rec), flush=True); out.write(json.dumps(rec) + "\n"); out.flush()
finally:
    for p, _ in targets.values():
        p.send_signal(signal.SIGCONT)
        stop(p)
