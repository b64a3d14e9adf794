#!/usr/bin/env bash
# Files and block devices (io_uring): the same disk image served four ways, interleaved per round
# (A B C D, A B C D, ...), each measured with the same workloads:
#   fio        fio --ioengine=io_uring --direct=1 on the file itself (the disk's own limit)
#   uring      jvhost serve --file (bdev_aio_create on the io_uring engine) + jvhost bench
#   threads    the same with the thread-pool engine (JVHOST_JAVA_OPTS=-Djvhost.fileEngine=threads)
#   qsd        qemu-storage-daemon, driver=file aio=io_uring cache.direct=on + jvhost bench
# Rows: 4k randread/randwrite QD1 and QD32, 128k read/write QD32; one queue, one initiator thread.
#   bench/uring-vs-fio.sh [FILE] [ROUNDS] [SECONDS]
# FILE (default /var/tmp/jvhost-uring-bench.img) is created with 1 GiB of written zeros if
# missing (so random writes hit allocated blocks). Needs fio (apt-get install fio) and
# qemu-storage-daemon (qemu-utils). Prints one line per run: target workload bs qd IOPS MiB/s p50us.
# jvhost serves with its default idle strategy (spin, yield, then sleep on the eventfds), as
# qemu-storage-daemon sleeps in its event loop; the client polls (jvhost bench's default).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FILE=${1:-/var/tmp/jvhost-uring-bench.img}
ROUNDS=${2:-2}
SECS=${3:-10}
RAMP=${RAMP:-2}
work=$(mktemp -d /tmp/jvhost-uring-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -f "$FILE" ]; then
  dd if=/dev/zero of="$FILE" bs=1M count=1024 oflag=direct status=none
fi

rows=("randread 4k 1" "randwrite 4k 1" "randread 4k 32" "randwrite 4k 32" "read 128k 32" "write 128k 32")

bench_socket() { # label socket
  local label=$1 sock=$2 w bs qd out
  for row in "${rows[@]}"; do
    read -r w bs qd <<<"$row"
    out=$("$here/jvhost" bench --socket "$sock" -w "$w" --bs "$bs" --qd "$qd" --time "$SECS" --ramp "$RAMP" --json --quiet)
    python3 - "$label" "$w" "$bs" "$qd" "$out" <<'EOF'
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
    fio --name=u --filename="$FILE" --ioengine=io_uring --direct=1 --rw="$w" --bs="$bs" --iodepth="$qd" \
        --runtime="$SECS" --ramp_time="$RAMP" --time_based --size=1G --output-format=json > "$work/fio.json" 2>/dev/null
    python3 - "$w" "$bs" "$qd" "$work/fio.json" <<'EOF'
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
  JVHOST_JAVA_OPTS="$opts" "$here/jvhost" serve --file "$FILE" --socket-dir "$work" --no-rpc \
      > "$work/$label.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_socket "$work/vhost.0"
  bench_socket "$label" "$work/vhost.0"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_qsd() {
  local pid
  rm -f "$work/qsd.sock"
  qemu-storage-daemon --blockdev "driver=file,node-name=f,filename=$FILE,aio=io_uring,cache.direct=on" \
      --export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$work/qsd.sock,writable=on" \
      > "$work/qsd.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_socket "$work/qsd.sock"
  bench_socket qsd "$work/qsd.sock"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for r in $(seq 1 "$ROUNDS"); do
  echo "# round $r $(date -u +%H:%M:%S)"
  run_fio
  run_jvhost uring ""
  run_jvhost threads "-Djvhost.fileEngine=threads"
  run_qsd
done
