#!/bin/sh
# Migration workload (busybox sh) for JvhostMigrationQemuTest:
#   migrate-guest.sh DEVICE REGION_MIB MD5_0 MD5_1 ...
# The host filled region k (REGION_MIB MiB at 16 + REGION_MIB * k MiB of the disk) with data
# whose md5 is MD5_k. Meanwhile reconnect-guest.sh's two writers write and verify blocks in the
# first 4 MiB the whole time. Driven by lines on the console:
#   "fill"   (sent while the migration iterates, after its first pass over RAM): read every
#            region into the page cache. Only the device writes those pages (DMA); the CPU never
#            does, so only jvhost's dirty log tells QEMU to send them again.
#   "check"  (sent to the destination after the switch-over): md5 each region FROM THE PAGE
#            CACHE (no re-read) and compare; a page the dirty log missed arrives with what it
#            held when QEMU's first pass sent it: JVHOST-MIGRATE-FAIL region ...
#   then the writers stop and verify everything they wrote (reconnect-guest.sh).
# Two things would hide a lost page and are avoided here: the block device's page cache is
# dropped at its last close, so fd 3 keeps DEVICE open throughout; and a kernel with
# init_on_alloc zeroes each new page-cache page with the CPU just before the DMA, which dirties
# it in QEMU's own bitmap (the test boots with init_on_alloc=0).
DEV=${1:?usage: migrate-guest.sh DEVICE REGION_MIB MD5...}
MIB=${2:?region size in MiB}
shift 2
exec 3<"$DEV"
echo 3 > /proc/sys/vm/drop_caches
buffers() { sed -n 's/^Buffers: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
# the writers stop when a line arrives on their stdin: a FIFO held open read-write (no blocking open)
mkfifo /tmp/writers.ctl
exec 4<>/tmp/writers.ctl
sh /reconnect-guest.sh "$DEV" <&4 &
writers=$!
# Keeps the migration iterating (its 1 ms downtime limit is then never met) until the check:
# rewrites 1 MiB of tmpfs over and over, pages QEMU sees dirtied by the CPU.
( while [ ! -e /tmp/checking ]; do dd if=/dev/zero of=/tmp/dirt bs=64k count=16 2>/dev/null; done ) &
dirtier=$!
echo "JVHOST-MIG-READY $(buffers)"
read -r cmd
echo "JVHOST-FILL-START $(buffers)"
k=0
for want in "$@"; do
  dd if="$DEV" of=/dev/null bs=1M skip=$((16 + MIB * k)) count=$MIB 2>/dev/null
  k=$((k + 1))
done
echo "JVHOST-FILL-DONE $k $(buffers)"
read -r cmd
touch /tmp/checking
wait $dirtier
echo "JVHOST-CHECK-START $(buffers)"
k=0
bad=0
for want in "$@"; do
  got=$(dd if="$DEV" bs=1M skip=$((16 + MIB * k)) count=$MIB 2>/dev/null | md5sum | cut -d' ' -f1)
  if [ "$got" = "$want" ]; then
    echo "JVHOST-REGION-OK $k"
  else
    echo "JVHOST-MIGRATE-FAIL region $k got $got"
    bad=$((bad + 1))
  fi
  k=$((k + 1))
done
# Buffers still at least the regions' size: the check read the cache, not the disk again.
echo "JVHOST-CHECK-DONE $bad $(buffers)"
echo stop >&4
wait $writers
