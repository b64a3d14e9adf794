#!/usr/bin/env bash
# SPDK's bdevperf (virtio-user initiator) against a running jvhost: every workload, blk and scsi,
# 1 and 2 queues; one result line per case. Not part of CI (needs an SPDK build and hugepages).
#   SPDK=/work/spdk SOCKDIR=/tmp/jvD bench/bdevperf-matrix.sh      # jvhost serving SOCKDIR/jv.blk and SOCKDIR/jv.scsi
# Extra bdevperf arguments (e.g. MASK=0x3 EXTRA=-C to drive both queues from two cores) via env.
set -uo pipefail
SPDK=${SPDK:?SPDK build directory}; SOCKDIR=${SOCKDIR:?directory of jv.blk and jv.scsi}
T=${T:-3}; MASK=${MASK:-0x2}; EXTRA=${EXTRA:-}
WORKLOADS=${WORKLOADS:-"verify randread randwrite unmap write_zeroes flush"}
for dev in blk scsi; do for vq in 1 2; do for w in $WORKLOADS; do
  cfg=$SOCKDIR/bp-$dev-$vq.json
  echo "{\"subsystems\":[{\"subsystem\":\"bdev\",\"config\":[{\"method\":\"bdev_virtio_attach_controller\",\"params\":{\"name\":\"V0\",\"trtype\":\"user\",\"traddr\":\"$SOCKDIR/jv.$dev\",\"dev_type\":\"$dev\",\"vq_count\":$vq,\"vq_size\":512}},{\"method\":\"bdev_wait_for_examine\"}]}]}" > "$cfg"
  log=$SOCKDIR/bp-$dev-$vq-$w.log
  LD_LIBRARY_PATH=$SPDK/build/lib timeout 60 "$SPDK/build/examples/bdevperf" -u -m "$MASK" $EXTRA -s 1024 -g -r "$SOCKDIR/bp.sock" \
      --json "$cfg" -q 32 -o 4096 -w "$w" -t "$T" > "$log" 2>&1
  rc=$?
  # bdevperf ends its table lines with \r
  total=$(tr '\r' '\n' < "$log" | grep -a "Total  " | tail -1 | awk '{print $3, $6, $7}')
  echo "$dev vq_count=$vq $w: exit $rc, IOPS / Fail/s / TO/s = ${total:-none} (log: $log)"
done; done; done
