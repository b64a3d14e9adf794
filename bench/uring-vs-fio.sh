#!/usr/bin/env bash
# Files and block devices (io_uring): the same disk image served several ways, interleaved per
# round (A B C D, A B C D, ...), each measured with the same workloads:
#   fio          fio --ioengine=io_uring --direct=1 on the file/device itself (the disk's own limit)
#   uring        jvhost serve --file (bdev_aio_create on the io_uring engine) + jvhost bench
#   uring-sleep  the same, the reactor sleeping on its eventfds as soon as a loop finds nothing to
#                do (-Djvhost.idle.spinNanos=0 -Djvhost.idle.yieldNanos=0) instead of spinning
#                100 us and yielding 1 ms first
#   uring-hybrid the same with the reactor's hybrid wait on (-Djvhost.idle.hybridSleepNanos=
#                $HYBRID_NANOS, default 50000: sleep at once while only io_uring I/O is in flight
#                and the ring's running wait estimate is at least that long; HYBRID_NAP=50: a
#                timed nap of half the expected wait instead; HYBRID_MIN_INFLIGHT=2: only with 2
#                or more requests in flight); the A/B of section
#                "Reactor policy while only bdev I/O is in flight" in BENCHMARKS.md
#   uring-nofixed, uring-sleep-nofixed   the same without fixed buffers (-Djvhost.uring.fixedBuffers=false)
#   threads      the same with the thread-pool engine (-Djvhost.fileEngine=threads)
#   qsd          qemu-storage-daemon, aio=io_uring cache.direct=on (driver file, or host_device
#                for a block device) + jvhost bench
# Rows: 4k randread/randwrite QD1 and QD32, 128k read/write QD32; one queue, one initiator thread.
#
#   bench/uring-vs-fio.sh [FILE | /dev/BLOCKDEV | --loop [FILE]] [ROUNDS] [SECONDS]
#
# FILE (default /var/tmp/jvhost-uring-bench.img) is created with 1 GiB of written zeros if
# missing (so random writes hit allocated blocks). --loop attaches FILE to a free loop device
# (losetup --direct-io=on, as root) and measures everything on /dev/loopN, detaching it at the
# end. A /dev/... path is used as it is (its data is overwritten!).
# Env: TARGETS (default "fio uring uring-sleep qsd threads"), RAMP (s, default 2), CLIENT_OPTS
# (jvhost bench options; default --interrupts: the client sleeps on the call eventfd as a
# guest's vCPU halts and as fio sleeps in io_uring_enter, so what is measured is the target and
# not two spinners fighting over 2 vCPUs; CLIENT_OPTS= gives the polling client of earlier runs).
# Needs fio (apt-get install fio) and qemu-storage-daemon (qemu-system-common / qemu-utils).
# Prints one line per run (target workload bs qd IOPS MiB/s p50us), then a table of medians over
# the rounds with jvhost (uring) / fio and / qsd.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOOP=0
if [ "${1:-}" = "--loop" ]; then LOOP=1; shift; fi
FILE=${1:-/var/tmp/jvhost-uring-bench.img}
ROUNDS=${2:-2}
SECS=${3:-10}
RAMP=${RAMP:-2}
TARGETS=${TARGETS:-fio uring uring-sleep qsd threads}
CLIENT_OPTS=${CLIENT_OPTS---interrupts}
work=$(mktemp -d /tmp/jvhost-uring-bench.XXXXXX)
pids=()
loopdev=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "$loopdev" ]; then losetup -d "$loopdev" || echo "losetup -d $loopdev failed: detach it by hand" >&2; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -e "$FILE" ]; then
  dd if=/dev/zero of="$FILE" bs=1M count=1024 oflag=direct status=none
fi
DEV=$FILE
if [ "$LOOP" = 1 ]; then
  loopdev=$(losetup --find --show --direct-io=on "$FILE")
  DEV=$loopdev
  echo "# loop device $loopdev over $FILE (direct-io on)"
fi
qsd_driver=file
[ -b "$DEV" ] && qsd_driver=host_device
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); disk $DEV; $ROUNDS round(s) of ${SECS}s (+${RAMP}s ramp); targets: $TARGETS; client options: ${CLIENT_OPTS:-(none: polling)}"

rows=("randread 4k 1" "randwrite 4k 1" "randread 4k 32" "randwrite 4k 32" "read 128k 32" "write 128k 32")

bench_socket() { # label socket
  local label=$1 sock=$2 w bs qd out
  for row in "${rows[@]}"; do
    read -r w bs qd <<<"$row"
    # shellcheck disable=SC2086
    out=$("$here/jvhost" bench --socket "$sock" -w "$w" --bs "$bs" --qd "$qd" --time "$SECS" --ramp "$RAMP" --json --quiet $CLIENT_OPTS)
    python3 - "$label" "$w" "$bs" "$qd" "$out" <<'EOF' | tee -a "$work/all.txt"
import json, sys
label, w, bs, qd, out = sys.argv[1:]
j = json.loads(out)
iops = j.get("iops") or j.get("total", {}).get("iops")
mib = j.get("mibPerSec") or (iops * (4096 if bs == "4k" else 131072) / 1048576)
print(f"{label} {w} {bs} {qd} {iops:.0f} {mib:.1f} p50us {j.get('p50Us', 0):.0f}", flush=True)
EOF
  done
}

run_fio() {
  local w bs qd
  for row in "${rows[@]}"; do
    read -r w bs qd <<<"$row"
    fio --name=u --filename="$DEV" --ioengine=io_uring --direct=1 --rw="$w" --bs="$bs" --iodepth="$qd" \
        --runtime="$SECS" --ramp_time="$RAMP" --time_based --size=1G --output-format=json > "$work/fio.json" 2>/dev/null
    python3 - "$w" "$bs" "$qd" "$work/fio.json" <<'EOF' | tee -a "$work/all.txt"
import json, sys
w, bs, qd, path = sys.argv[1:]
j = json.load(open(path))["jobs"][0]
side = j["read"] if "read" in w else j["write"]
p50 = side.get("clat_ns", {}).get("percentile", {}).get("50.000000", 0) / 1000
print(f"fio {w} {bs} {qd} {side['iops']:.0f} {side['bw'] / 1024:.1f} p50us {p50:.0f}", flush=True)
EOF
  done
}

wait_socket() { for _ in $(seq 1 300); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1" >&2; return 1; }

run_jvhost() { # label java-opts
  local label=$1 opts=$2 pid
  rm -f "$work/vhost.0"
  JVHOST_JAVA_OPTS="$opts" "$here/jvhost" serve --file "$DEV" --socket-dir "$work" --no-rpc \
      > "$work/$label.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_socket "$work/vhost.0"
  bench_socket "$label" "$work/vhost.0"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_qsd() {
  local pid
  rm -f "$work/qsd.sock"
  qemu-storage-daemon --blockdev "driver=$qsd_driver,node-name=f,filename=$DEV,aio=io_uring,cache.direct=on" \
      --export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$work/qsd.sock,writable=on" \
      > "$work/qsd.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_socket "$work/qsd.sock" || { cat "$work/qsd.log" >&2; return 1; }
  bench_socket qsd "$work/qsd.sock"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

"$here/jvhost" --version >/dev/null 2>&1 || true # builds the jar once, outside the timed runs
for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
  for t in $TARGETS; do
    case $t in
      fio) run_fio ;;
      uring) run_jvhost uring "" ;;
      uring-sleep) run_jvhost uring-sleep "-Djvhost.idle.spinNanos=0 -Djvhost.idle.yieldNanos=0" ;;
      uring-hybrid) run_jvhost uring-hybrid "-Djvhost.idle.hybridSleepNanos=${HYBRID_NANOS:-50000} -Djvhost.idle.hybridNapPercent=${HYBRID_NAP:-0} -Djvhost.idle.hybridMinInFlight=${HYBRID_MIN_INFLIGHT:-1}" ;;
      uring-nofixed) run_jvhost uring-nofixed "-Djvhost.uring.fixedBuffers=false" ;;
      uring-sleep-nofixed) run_jvhost uring-sleep-nofixed "-Djvhost.uring.fixedBuffers=false -Djvhost.idle.spinNanos=0 -Djvhost.idle.yieldNanos=0" ;;
      threads) run_jvhost threads "-Djvhost.fileEngine=threads" ;;
      qsd) run_qsd ;;
      *) echo "unknown target $t" >&2; exit 2 ;;
    esac
  done
done
echo "# done $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$work/all.txt" "$TARGETS" <<'EOF'
import sys, statistics
from collections import defaultdict
path, targets = sys.argv[1], sys.argv[2].split()
runs = defaultdict(list)  # (target, row) -> [(iops, mib, p50)]
for line in open(path):
    t, w, bs, qd, iops, mib, _, p50 = line.split()
    runs[(t, f"{bs} {w} QD{qd}")].append((float(iops), float(mib), float(p50)))
rows = []
for line in open(path):
    t, w, bs, qd = line.split()[:4]
    k = f"{bs} {w} QD{qd}"
    if k not in rows: rows.append(k)
med = lambda k, i: statistics.median(x[i] for x in runs[k]) if runs.get(k) else None
def cell(t, row):
    k = (t, row)
    if not runs.get(k): return "-"
    if row.startswith("128k"): return f"{med(k, 1):,.0f} MiB/s ({med(k, 2):,.0f})"
    return f"{med(k, 0):,.0f} ({med(k, 2):,.0f})"
ratios = [(a, b) for a in ("uring", "uring-hybrid", "uring-sleep") for b in ("fio", "qsd") if a in targets and b in targets]
print()
print("Medians over the rounds: IOPS (or MiB/s) and, in brackets, median latency in us.")
print("| workload | " + " | ".join(targets + [f"{a} / {b}" for a, b in ratios]) + " |")
print("|---|" + "---:|" * (len(targets) + len(ratios)))
for row in rows:
    rs = []
    for a, b in ratios:
        x, y = med((a, row), 0), med((b, row), 0)
        rs.append(f"{x / y:.2f}x" if x and y else "-")
    print(f"| {row} | " + " | ".join([cell(t, row) for t in targets] + rs) + " |")
EOF
