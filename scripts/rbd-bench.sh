#!/usr/bin/env bash
# jvhost on Ceph RBD against librbd's own clients, same cluster, same sitting, interleaved (for
# each round and workload: every client in turn). Prints a Markdown table of medians.
#
#   scripts/rbd-bench.sh [CEPH_DIR] [SECONDS] [ROUNDS]
#
# Clients (CLIENTS="jvhost qsd rbd fio" by default; each on its own image):
#   jvhost  jvhost serve, RBD bdev behind a vhost-user-blk controller, driven by jvhost bench
#   qsd     qemu-storage-daemon --blockdev driver=rbd exporting vhost-user-blk, the same client
#           (Debian: qemu-block-extra; installed here with apt-get when missing, as root)
#   rbd     rbd bench (--io-threads = QD; no time limit, so it runs under `timeout` and the rate
#           is taken from its per-second lines after the ramp)
#   fio     fio --ioengine=rbd (skipped when Debian's fio lacks the engine)
#   jvhost-hybrid  a second jvhost serve with the reactor's hybrid wait on
#           (-Djvhost.idle.hybridSleepNanos=$HYBRID_NANOS, default 50000: sleep at once while only
#           librbd I/O is in flight and its running wait estimate is at least that long), the
#           same client (HYBRID_NAP=50: a timed nap of half the expected wait instead; HYBRID_MIN_INFLIGHT=2: only
#           with 2 or more requests in flight); for the A/B of BENCHMARKS.md "Reactor policy while only bdev I/O is in
#           flight" (CLIENTS="jvhost jvhost-hybrid qsd rbd"). HYBRID_OPTS="-D..." replaces those
#           properties (any second reactor policy: e.g. "-Djvhost.idle.spinNanos=0
#           -Djvhost.idle.yieldNanos=0", a reactor that sleeps whenever a loop finds nothing)
# The two vhost-user targets are driven by `jvhost bench --interrupts` (one queue, sleeping on
# the call eventfd like a guest: a polling initiator takes a whole core that librbd and the OSD
# need on a small machine, and rbd bench and fio do not poll either).
#
# CEPH_DIR: a cluster started by scripts/ceph-cluster.sh (default target/ceph-bench, started on
# MON_V2_PORT/MON_V1_PORT, default 13300/16789 here so that it does not meet a test's cluster,
# and stopped here if it was not running). 256 MiB images, prefilled.
# Fairness: the images have only the layering feature (no exclusive lock: an rbd bench stopped
# by `timeout` would leave its lock to be broken by the next run) and every client runs librbd's
# cache in writeback from the start (rbd_cache_writethrough_until_flush=false, in a client conf
# file that all four read: rbd bench flushes once and so gets writeback, the benchmark initiator
# never flushes, a guest flushes at boot).
#
# Knobs for ablations (BENCHMARKS.md "Ceph RBD: where QD1 writes and 128 KiB reads lose"):
#   WORKLOADS="4k-randwrite-qd1 128k-read-qd16"  only these rows
#   CLIENT_CONF="rbd_cache = false"               extra lines for the [client] section (all clients)
#   JVHOST_SERVE_ARGS="-m 0x2"                    extra jvhost serve arguments (pinning, ...)
#   JVHOST_BENCH_ARGS="--cpu 0"                   extra jvhost bench arguments
#   JVHOST_JAVA_OPTS=...                          as for ./jvhost (the serve process only)
#   RBD_SEQ_PATTERN=seq                           rbd bench's 16-stream "seq" instead of full-seq
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$here/target/ceph-bench}"
secs="${2:-10}"
rounds="${3:-2}"
ramp=2
clients="${CLIENTS:-jvhost qsd rbd fio}"
export MON_V2_PORT="${MON_V2_PORT:-13300}" MON_V1_PORT="${MON_V1_PORT:-16789}"
started=0
bench_java_opts="${JVHOST_JAVA_OPTS:-}"
unset JVHOST_JAVA_OPTS
if ! bash "$here/scripts/ceph-cluster.sh" status "$dir" 2>/dev/null; then
  bash "$here/scripts/ceph-cluster.sh" start "$dir"
  started=1
fi
has() { [[ " $clients " == *" $1 "* ]]; }
if has qsd && ! qemu-storage-daemon --blockdev help 2>/dev/null | grep -qw rbd && [ ! -e /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so ]; then
  echo "rbd-bench: installing qemu-block-extra (qemu-storage-daemon's rbd driver)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-block-extra >/dev/null || clients="${clients/qsd/}"
fi
if has fio && ! fio --enghelp=rbd >/dev/null 2>&1; then
  echo "rbd-bench: fio has no rbd engine here; skipping fio" >&2
  clients="${clients/fio/}"
fi

work="$(mktemp -d)"
cleanup() {
  for p in ${serve_pid:-} ${serve2_pid:-} ${qsd_pid:-}; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for i in jv jvh qsd rbd fio; do rbd rm --no-progress "rbd/bench-$i" >/dev/null 2>&1 || true; done
  [ $started = 1 ] && bash "$here/scripts/ceph-cluster.sh" stop "$dir"
  rm -rf "$work"
}
trap cleanup EXIT
# One client conf for everybody: the cluster's plus the cache mode (and any ablation lines).
{ cat "$dir/ceph.conf"; printf '\n[client]\nrbd_cache_writethrough_until_flush = false\n%s\n' "${CLIENT_CONF:-}"; } > "$work/client.conf"
export CEPH_CONF="$work/client.conf"
declare -A image_of=([jvhost]=jv [jvhost-hybrid]=jvh [qsd]=qsd [rbd]=rbd [fio]=fio)
for c in $clients; do
  i="${image_of[$c]}"
  rbd rm --no-progress "rbd/bench-$i" >/dev/null 2>&1 || true
  rbd create --size 256M --image-feature layering "rbd/bench-$i"
  rbd bench --io-type write --io-pattern seq --io-size 4M --io-threads 4 --io-total 256M "rbd/bench-$i" >/dev/null
done

wait_socket() { for _ in $(seq 1 300); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "no socket $1:"; cat "$2"; exit 1; }
jv_config() { # image -> JSON config
  cat <<EOF
{"subsystems":[{"subsystem":"bdev","config":[
 {"method":"bdev_rbd_register_cluster","params":{"name":"ceph","config_file":"$CEPH_CONF"}},
 {"method":"bdev_rbd_create","params":{"name":"Ceph0","pool_name":"rbd","rbd_name":"$1","block_size":512,"cluster_name":"ceph"}}]},
 {"subsystem":"vhost_blk","config":[{"method":"vhost_create_blk_controller","params":{"ctrlr":"rbd.0","dev_name":"Ceph0"}}]}]}
EOF
}
if has jvhost; then
  jv_config bench-jv > "$work/cfg.json"
  # shellcheck disable=SC2086
  JVHOST_JAVA_OPTS="$bench_java_opts" "$here/jvhost" serve --json "$work/cfg.json" -S "$work" -r "$work/rpc.sock" ${JVHOST_SERVE_ARGS:-} > "$work/serve.log" 2>&1 &
  serve_pid=$!
  wait_socket "$work/rbd.0" "$work/serve.log"
  echo "$serve_pid" > "${RBD_BENCH_PIDFILE:-/dev/null}"
fi
if has jvhost-hybrid; then
  mkdir -p "$work/hybrid"
  jv_config bench-jvh > "$work/hybrid/cfg.json"
  # shellcheck disable=SC2086
  hybrid_opts="-Djvhost.idle.hybridSleepNanos=${HYBRID_NANOS:-50000} -Djvhost.idle.hybridNapPercent=${HYBRID_NAP:-0} -Djvhost.idle.hybridMinInFlight=${HYBRID_MIN_INFLIGHT:-1}"
  JVHOST_JAVA_OPTS="$bench_java_opts ${HYBRID_OPTS:-$hybrid_opts}" "$here/jvhost" serve --json "$work/hybrid/cfg.json" \
      -S "$work/hybrid" -r "$work/hybrid/rpc.sock" ${JVHOST_SERVE_ARGS:-} > "$work/hybrid/serve.log" 2>&1 &
  serve2_pid=$!
  wait_socket "$work/hybrid/rbd.0" "$work/hybrid/serve.log"
fi
if has qsd; then
  qemu-storage-daemon --blockdev "driver=rbd,node-name=r,pool=rbd,image=bench-qsd,conf=$CEPH_CONF" \
      --export "type=vhost-user-blk,id=e,node-name=r,addr.type=unix,addr.path=$work/qsd.sock,writable=on" > "$work/qsd.log" 2>&1 &
  qsd_pid=$!
  wait_socket "$work/qsd.sock" "$work/qsd.log"
fi

# workload: name jvhost-workload bs qd rbd-io-type rbd-pattern fio-rw
all_workloads=(
  "4k-randread-qd1 randread 4k 1 read rand randread"
  "4k-randread-qd16 randread 4k 16 read rand randread"
  "4k-randwrite-qd1 randwrite 4k 1 write rand randwrite"
  "4k-randwrite-qd16 randwrite 4k 16 write rand randwrite"
  "128k-read-qd16 read 128k 16 read seq read"
  "128k-write-qd16 write 128k 16 write seq write"
)
workloads=()
for w in "${all_workloads[@]}"; do
  if [ -z "${WORKLOADS:-}" ] || [[ " $WORKLOADS " == *" ${w%% *} "* ]]; then workloads+=("$w"); fi
done

vhost_rate() { # socket workload bs qd -> IOPS
  # shellcheck disable=SC2086
  "$here/jvhost" bench -s "$1" -w "$2" -o "$3" -q "$4" --time "$secs" --ramp "$ramp" --interrupts ${JVHOST_BENCH_ARGS:-} --json --quiet | jq '.iops | floor'
}
rbd_rate() { # io-type pattern bs qd -> IOPS after the ramp
  local out
  # rbd bench's "seq" is one stream per io-thread, each from a random offset: 16 streams on 16
  # objects. jvhost bench, qsd and fio read one stream (16 requests in flight on one or two
  # objects), which is rbd bench's "full-seq".
  [ "$2" = seq ] && set -- "$1" "${RBD_SEQ_PATTERN:-full-seq}" "$3" "$4"
  out="$(timeout -s INT $((secs + ramp + 1)) rbd bench --io-type "$1" --io-pattern "$2" --io-size "${3^^}" --io-threads "$4" \
    --io-total 100G rbd/bench-rbd 2>/dev/null || true)"
  echo "$out" | awk -v ramp="$ramp" '$1 ~ /^[0-9]+$/ && NF >= 4 { sec[n] = $1; ops[n] = $2; n++ }
    END { a = -1; for (i = 0; i < n; i++) if (sec[i] >= ramp && a < 0) a = i;
          if (a < 0 || n - 1 <= a) { print 0; exit } printf "%.0f\n", (ops[n-1] - ops[a]) / (sec[n-1] - sec[a]) }'
}
fio_rate() { # rw bs qd -> IOPS
  fio --name=rbd --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench-fio --rw="$1" --bs="$2" --iodepth="$3" \
    --time_based --runtime="$secs" --ramp_time="$ramp" --output-format=json 2>/dev/null |
    jq '.jobs[0] | (.read.iops + .write.iops) | floor'
}

declare -A res
for r in $(seq 1 "$rounds"); do
  for w in "${workloads[@]}"; do
    set -- $w
    line="round $r $1:"
    for c in $clients; do
      case $c in
        jvhost) v="$(vhost_rate "$work/rbd.0" "$2" "$3" "$4")" ;;
        jvhost-hybrid) v="$(vhost_rate "$work/hybrid/rbd.0" "$2" "$3" "$4")" ;;
        qsd) v="$(vhost_rate "$work/qsd.sock" "$2" "$3" "$4")" ;;
        rbd) v="$(rbd_rate "$5" "$6" "$3" "$4")" ;;
        fio) v="$(fio_rate "$7" "$3" "$4")" ;;
      esac
      res[$1.$c]="${res[$1.$c]:-} $v"
      line="$line $c $v"
    done
    echo "$line" >&2
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[n++] = $1 } END { if (n == 0) print 0; else if (n % 2) print v[int(n/2)]; else print (v[n/2-1] + v[n/2]) / 2 }'; }
declare -A names=([jvhost]="jvhost" [jvhost-hybrid]="jvhost hybrid" [qsd]="qsd rbd" [rbd]="rbd bench" [fio]="fio rbd")
hdr="| workload |"; sep="|---|"
for c in $clients; do hdr="$hdr ${names[$c]} IOPS |"; sep="$sep---:|"; done
has jvhost && for c in $clients; do [ "$c" = jvhost ] || { hdr="$hdr jvhost / ${names[$c]} |"; sep="$sep---:|"; }; done
echo "$hdr"; echo "$sep"
for w in "${workloads[@]}"; do
  set -- $w
  row="| $1 |"
  declare -A m=()
  for c in $clients; do m[$c]="$(echo "${res[$1.$c]}" | median)"; row="$row $(printf '%.0f' "${m[$c]}") |"; done
  if has jvhost; then
    for c in $clients; do
      [ "$c" = jvhost ] && continue
      row="$row $(awk -v j="${m[jvhost]}" -v b="${m[$c]}" 'BEGIN { print (b > 0 ? sprintf("%.2f", j / b) : "n/a") }') |"
    done
  fi
  echo "$row"
done
echo "(medians of $rounds round(s) of ${secs} s after a ${ramp} s ramp; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
