#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for tests and benchmarks: one mon and one bluestore OSD
# on a sparse file, on 127.0.0.1, auth none, no systemd, everything under DIR (nothing in
# /etc/ceph or /var/lib/ceph). Needs Debian's ceph-mon, ceph-osd and ceph-common
# (scripts/install-test-deps.sh installs them).
#
#   scripts/ceph-cluster.sh start DIR    # wipes DIR, starts mon + OSD, creates pool "rbd"
#   scripts/ceph-cluster.sh stop DIR     # stops every daemon it started there (idempotent)
#   scripts/ceph-cluster.sh status DIR   # exit 0 when the OSD is up
#   scripts/ceph-cluster.sh stop-osd DIR / start-osd DIR   # outage tests: the OSD alone
#   scripts/ceph-cluster.sh stop-mon DIR / start-mon DIR   # outage tests: the mon alone
#
# Clients: CEPH_CONF=DIR/ceph.conf (also written to DIR/env). Ports: the mon listens on
# MON_V2_PORT (default 3300) and MON_V1_PORT (default 6789); two clusters on one machine need
# different ports. OSD ports are picked by Ceph in 6800-7300. WITH_MGR=1 also starts a mgr
# (not needed for RBD; it costs ~300 MiB and a CPU burst).
set -euo pipefail

cmd="${1:-}"; dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|status|stop-osd|start-osd|stop-mon|start-mon DIR" >&2
  exit 2
fi
mkdir -p "$dir"
D="$(cd "$dir" && pwd)"
CONF="$D/ceph.conf"
MON_V2_PORT="${MON_V2_PORT:-3300}"
MON_V1_PORT="${MON_V1_PORT:-6789}"
export CEPH_CONF="$CONF"

log() { echo "ceph-cluster: $*" >&2; }

# The pid of daemon NAME if it is running and really is ours (its command line names our conf).
live_pid() {
  local f="$D/run/$1.pid.bg" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "-c $CONF" || return 1
  echo "$pid"
}

# Sends SIGTERM to the named daemons together, waits up to 15 s, then SIGKILL.
stop_daemons() {
  local pids=() name pid
  for name in "$@"; do
    if pid="$(live_pid "$name")"; then pids+=("$pid"); kill -TERM "$pid" 2>/dev/null || true; fi
    rm -f "$D/run/$name.pid.bg"
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  for _ in $(seq 1 150); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  log "had to SIGKILL ${pids[*]}"
}

start_daemon() { # NAME BINARY ARGS...
  local name="$1"; shift
  nohup "$@" -c "$CONF" -f >> "$D/log/$name.out" 2>&1 &
  echo $! > "$D/run/$name.pid.bg"
}

wait_for() { # SECONDS DESCRIPTION COMMAND...
  local secs="$1" what="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out after ${secs}s waiting for $what (logs: $D/log)"; return 1; fi
    sleep 0.1
  done
}

osd_up() { ceph --connect-timeout 5 osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; }

write_conf() {
  local fsid="$1"
  cat > "$CONF" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 2
mon_data_avail_crit = 1
run_dir = $D/run
admin_socket = $D/run/\$cluster-\$name.asok
pid_file = $D/run/\$name.pid
log_file = $D/log/\$cluster-\$name.log
crash_dir = $D/crash

[mon]
mon_data = $D/mon/\$cluster-\$id
mon_allow_pool_delete = true
mon_warn_on_insecure_global_id_reclaim_allowed = false
# map commits after 0.1 s instead of 1 s: bring-up about 3x faster
paxos_propose_interval = 0.1

[mgr]
mgr_data = $D/mgr/\$cluster-\$id

[osd]
osd_data = $D/osd/\$cluster-\$id
osd_objectstore = bluestore
osd_memory_target = 1073741824
# not \$osd_data/block: mkfs makes that a symlink to this path (ELOOP)
bluestore_block_path = $D/osd/\$cluster-\$id.block
bluestore_block_create = true
bluestore_block_size = 10737418240
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
# every bluestore device close waits one poll interval (default 250 ms)
bdev_aio_poll_ms = 10
EOF
}

start() {
  local t0=$SECONDS
  command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v ceph >/dev/null || {
    log "ceph-mon/ceph-osd/ceph not installed (run scripts/install-test-deps.sh)"; exit 1; }
  [ -f "$CONF" ] && stop
  rm -rf "$D"/{mon,osd,mgr,run,log,crash,monmap,env}
  mkdir -p "$D"/{mon,osd,mgr,run,log,crash}
  local fsid osd_uuid
  fsid="$(cat /proc/sys/kernel/random/uuid)"; osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  write_conf "$fsid"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$D/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" >> "$D/log/mkfs.out" 2>&1
  start_daemon mon ceph-mon -i a
  if [ "${WITH_MGR:-0}" = 1 ]; then start_daemon mgr ceph-mgr -i x; fi
  local id
  id="$(ceph --connect-timeout 20 osd new "$osd_uuid")"
  [ "$id" = 0 ] || { log "ceph osd new gave '$id', expected 0"; exit 1; }
  mkdir -p "$D/osd/ceph-0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >> "$D/log/mkfs.out" 2>&1
  start_daemon osd ceph-osd -i 0
  wait_for 60 "the OSD to come up" osd_up
  ceph osd pool create rbd 8 8 replicated >/dev/null 2>&1
  rbd pool init rbd
  echo "export CEPH_CONF=$CONF" > "$D/env"
  log "cluster up in $((SECONDS - t0)) s: export CEPH_CONF=$CONF"
}

stop() {
  [ -d "$D/run" ] || return 0
  stop_daemons osd mgr
  stop_daemons mon
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) osd_up ;;
  stop-osd) stop_daemons osd ;;
  start-osd) live_pid osd >/dev/null || start_daemon osd ceph-osd -i 0; wait_for 60 "the OSD to come up" osd_up ;;
  stop-mon) stop_daemons mon ;;
  start-mon) live_pid mon >/dev/null || start_daemon mon ceph-mon -i a ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
