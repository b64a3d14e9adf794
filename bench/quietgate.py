"""Runs a benchmark client and tells whether anything else took CPU while it ran.

On these 2-vCPU machines the target spins on one core and the client on the other, so every
CPU second anything else gets (a build, a test, the hypervisor's steal) is taken from one of
the two measured sides. `run` measures it: the machine's busy time over the client's whole
life (/proc/stat, steal included) minus the client's own CPU time (wait4's rusage) minus the
target's (/proc/PID/stat, all its threads). That remainder, divided by the wall time, is the
"others" figure in CPUs; a run where it exceeds QUIET_MAX_OTHERS (env, default 0.05) is
repeated after a pause, up to QUIET_RETRIES (env, default 4) times, and the last attempt is
kept flagged as disturbed. QUIET_RETRIES=0 turns the gate off (one attempt, still measured).

Used by bench/ab-targets.py and bench/spdk-side-by-side.py."""
import os, subprocess, sys, time

MAX_OTHERS = float(os.environ.get("QUIET_MAX_OTHERS", "0.05"))
RETRIES = int(os.environ.get("QUIET_RETRIES", "4"))
HZ = os.sysconf("SC_CLK_TCK")


def _busy_seconds():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice: guest time is inside user
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ


def _proc_seconds(pid):
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime (fields 14, 15)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def run_once(cmd, target_pid=None, timeout=120, **popen):
    """Runs cmd to completion; returns (returncode, stdout, stderr, others_cpus)."""
    b0, t0, w0 = _busy_seconds(), _proc_seconds(target_pid), time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise SystemExit(f"timed out: {' '.join(cmd)}")
    # communicate() reaped the child: its CPU time is in this process's children rusage.
    wall = time.monotonic() - w0
    others = _busy_seconds() - b0 - (_proc_seconds(target_pid) - t0)
    return p, out, err, wall, others


def run(cmd, target_pid=None, timeout=120, label="", **popen):
    """Runs cmd until a quiet attempt (see module doc). Returns (returncode, stdout, stderr, info)
    where info = {"others_cpus": float, "attempts": int, "disturbed": bool}."""
    attempts = 0
    while True:
        attempts += 1
        c0 = os.times()
        p, out, err, wall, others_all = run_once(cmd, target_pid, timeout, **popen)
        c1 = os.times()
        client = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        others = max(0.0, (others_all - client) / wall) if wall > 0 else 0.0
        quiet = others <= MAX_OTHERS
        if quiet or attempts > RETRIES or p.returncode != 0:
            return p.returncode, out, err, {"others_cpus": round(others, 3), "attempts": attempts, "disturbed": not quiet}
        print(f"  [quietgate] {label}: others took {others:.2f} CPU during the run; again in 5 s (attempt {attempts + 1})",
              file=sys.stderr, flush=True)
        time.sleep(5)
