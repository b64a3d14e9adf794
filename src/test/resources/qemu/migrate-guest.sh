#!/bin/sh
# Migration workload (busybox sh) for JvhostMigrationQemuTest:
#   migrate-guest.sh DEVICE WANT_MD5
# Runs reconnect-guest.sh's writers and verification, plus a reader: it drops the page cache,
# reads 32 MiB at 16 MiB (the host filled it; WANT_MD5 is its md5) into the page cache through
# the device, then checks it from the cache three times. The device writes those cache pages
# into guest RAM; if it did not log them while the guest migrates, the destination's copies are
# stale and a later check from the cache fails: JVHOST-MIGRATE-FAIL.
DEV=${1:?usage: migrate-guest.sh DEVICE WANT_MD5}
WANT=${2:?usage: migrate-guest.sh DEVICE WANT_MD5}
(
  n=0
  while [ ! -e /tmp/stop ]; do
    echo 3 > /proc/sys/vm/drop_caches
    dd if="$DEV" of=/dev/null bs=1M skip=16 count=32 2>/dev/null
    for k in 1 2 3; do
      got=$(dd if="$DEV" bs=1M skip=16 count=32 2>/dev/null | md5sum | cut -d' ' -f1)
      [ "$got" = "$WANT" ] || echo "JVHOST-MIGRATE-FAIL read $n $k $got"
    done
    n=$((n + 1))
    echo "JVHOST-READ $n"
  done
) &
sh /reconnect-guest.sh "$DEV"
rc=$?
wait
exit $rc
