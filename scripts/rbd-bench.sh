#!/usr/bin/env bash
# jvhost on Ceph RBD vs librbd's own `rbd bench`, same cluster, same sitting, interleaved
# (for each workload and round: jvhost, then rbd bench). Prints a Markdown table of medians.
#
#   scripts/rbd-bench.sh [CEPH_DIR] [SECONDS] [ROUNDS]
#
# CEPH_DIR: a cluster started by scripts/ceph-cluster.sh (default target/ceph-bench, started and
# stopped here if it is not running). Two 256 MiB images, prefilled, one per client (two
# clients on one image would bounce its exclusive lock). jvhost serves its image through a
# vhost-user-blk controller; `jvhost bench --interrupts` (one queue, sleeping on the call eventfd
# like a guest: a polling initiator takes a whole core that librbd and the OSD need on a small
# machine, and rbd bench does not poll either) drives it. rbd bench runs
# with --io-threads = QD; it has no time limit, so it runs under `timeout` and the rate is
# taken from its per-second lines after the ramp.
# Fairness: images have only the layering feature (no exclusive lock: an rbd bench stopped by
# `timeout` would leave its lock to be broken by the next run) and both clients run librbd's
# cache in writeback from the start (rbd_cache_writethrough_until_flush=false): rbd bench
# flushes once and so gets writeback, while the benchmark initiator never flushes; a guest
# flushes at boot, which does the same).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$here/target/ceph-bench}"
secs="${2:-10}"
rounds="${3:-2}"
ramp=2
started=0
export CEPH_CONF="$dir/ceph.conf"
if ! bash "$here/scripts/ceph-cluster.sh" status "$dir" 2>/dev/null; then
  bash "$here/scripts/ceph-cluster.sh" start "$dir"
  started=1
fi
work="$(mktemp -d)"
cleanup() {
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  rbd rm --no-progress rbd/bench-jv >/dev/null 2>&1 || true
  rbd rm --no-progress rbd/bench-rbd >/dev/null 2>&1 || true
  [ $started = 1 ] && bash "$here/scripts/ceph-cluster.sh" stop "$dir"
  rm -rf "$work"
}
trap cleanup EXIT
for i in bench-jv bench-rbd; do
  rbd rm --no-progress "rbd/$i" >/dev/null 2>&1 || true
  rbd create --size 256M --image-feature layering "rbd/$i"
  rbd bench --io-type write --io-pattern seq --io-size 4M --io-threads 4 --io-total 256M "rbd/$i" >/dev/null
done
cat > "$work/cfg.json" <<EOF
{"subsystems":[{"subsystem":"bdev","config":[
 {"method":"bdev_rbd_register_cluster","params":{"name":"ceph","config_file":"$CEPH_CONF","config_param":{"rbd_cache_writethrough_until_flush":"false"}}},
 {"method":"bdev_rbd_create","params":{"name":"Ceph0","pool_name":"rbd","rbd_name":"bench-jv","block_size":512,"cluster_name":"ceph"}}]},
 {"subsystem":"vhost_blk","config":[{"method":"vhost_create_blk_controller","params":{"ctrlr":"rbd.0","dev_name":"Ceph0"}}]}]}
EOF
"$here/jvhost" serve --json "$work/cfg.json" -S "$work" -r "$work/rpc.sock" > "$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do [ -S "$work/rbd.0" ] && break; sleep 0.1; done
[ -S "$work/rbd.0" ] || { echo "jvhost serve did not come up:"; cat "$work/serve.log"; exit 1; }

# workload: name jvhost-workload bs qd rbd-io-type rbd-pattern
workloads=(
  "4k-randread-qd1 randread 4k 1 read rand"
  "4k-randread-qd16 randread 4k 16 read rand"
  "4k-randwrite-qd1 randwrite 4k 1 write rand"
  "4k-randwrite-qd16 randwrite 4k 16 write rand"
  "128k-read-qd16 read 128k 16 read seq"
  "128k-write-qd16 write 128k 16 write seq"
)

rbd_rate() { # io-type pattern bs qd -> IOPS after the ramp
  local out
  out="$(timeout -s INT $((secs + ramp + 1)) rbd bench --rbd_cache_writethrough_until_flush=false --io-type "$1" --io-pattern "$2" --io-size "${3^^}" --io-threads "$4" \
    --io-total 100G rbd/bench-rbd 2>/dev/null || true)"
  echo "$out" | awk -v ramp="$ramp" '$1 ~ /^[0-9]+$/ && NF >= 4 { sec[n] = $1; ops[n] = $2; n++ }
    END { a = -1; for (i = 0; i < n; i++) if (sec[i] >= ramp && a < 0) a = i;
          if (a < 0 || n - 1 <= a) { print 0; exit } printf "%.0f\n", (ops[n-1] - ops[a]) / (sec[n-1] - sec[a]) }'
}

declare -A jv rb
for r in $(seq 1 "$rounds"); do
  for w in "${workloads[@]}"; do
    set -- $w
    j="$("$here/jvhost" bench -s "$work/rbd.0" -w "$2" -o "$3" -q "$4" --time "$secs" --ramp "$ramp" --interrupts --json --quiet | jq '.iops')"
    b="$(rbd_rate "$5" "$6" "$3" "$4")"
    echo "round $r $1: jvhost $j IOPS, rbd bench $b IOPS" >&2
    jv[$1]="${jv[$1]:-} $j"; rb[$1]="${rb[$1]:-} $b"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[n++] = $1 } END { if (n % 2) print v[int(n/2)]; else print (v[n/2-1] + v[n/2]) / 2 }'; }
echo "| workload | jvhost bench IOPS | rbd bench IOPS | ratio |"
echo "|---|---|---|---|"
for w in "${workloads[@]}"; do
  set -- $w
  j="$(echo "${jv[$1]}" | median)"; b="$(echo "${rb[$1]}" | median)"
  awk -v n="$1" -v j="$j" -v b="$b" 'BEGIN { printf "| %s | %.0f | %.0f | %s |\n", n, j, b, (b > 0 ? sprintf("%.2f×", j / b) : "n/a") }'
done
