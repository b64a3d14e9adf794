#!/bin/sh
# Migration workload (busybox sh) for JvhostMigrationQemuTest:
#   migrate-guest.sh DEVICE MD5_0 MD5_1 MD5_2 MD5_3
# Runs reconnect-guest.sh's writers and verification, plus a reader: cycle n drops the page
# cache, reads 8 MiB region n % 4 (at 16 + 8 * (n % 4) MiB; the host filled each with different
# data, MD5_k is region k's md5) into the page cache through the device, then checks it from the
# cache twice. The device writes those cache pages into guest RAM; if it did not log them while
# the guest migrates, the destination keeps what those pages held before (another region's
# data) and a check from the cache fails: JVHOST-MIGRATE-FAIL.
DEV=${1:?usage: migrate-guest.sh DEVICE MD5_0 MD5_1 MD5_2 MD5_3}
shift
(
  n=0
  while [ ! -e /tmp/stop ]; do
    k=$((n % 4))
    eval want=\${$((k + 1))}
    skip=$((16 + 8 * k))
    echo 3 > /proc/sys/vm/drop_caches
    dd if="$DEV" of=/dev/null bs=1M skip=$skip count=8 2>/dev/null
    for c in 1 2; do
      got=$(dd if="$DEV" bs=1M skip=$skip count=8 2>/dev/null | md5sum | cut -d' ' -f1)
      [ "$got" = "$want" ] || echo "JVHOST-MIGRATE-FAIL read $n region $k check $c $got"
    done
    n=$((n + 1))
    echo "JVHOST-READ $n"
  done
) &
sh /reconnect-guest.sh "$DEV"
rc=$?
wait
exit $rc
