#!/bin/sh
# Memory hotplug guest script (busybox sh) for JvhostHotplugQemuTest:
#   hotplug-guest.sh DEVICE
# 1. Background I/O on DEVICE (write a random 256 KiB block at rotating offsets above 80 MiB with
#    O_DIRECT, read it back, compare) runs while the host adds a pc-dimm over QMP.
# 2. Prints JVHOST-HOTPLUG-READY and waits for a line from the host (sent after device_add).
# 3. Stops the background I/O, waits for new memory blocks, onlines them as ZONE_MOVABLE (user
#    pages and the page cache are allocated from the highest zone first, so the workload's
#    buffers land in the new memory), runs blk-workload.sh, and reports how many pages of the
#    movable zone are in use: JVHOST-MOVABLE-USED <pages>.
DEV=${1:?usage: hotplug-guest.sh DEVICE}
dd if=/dev/urandom of=/tmp/pat bs=64k count=4 2>/dev/null
want=$(md5sum < /tmp/pat | cut -d' ' -f1)
(
  i=0
  while [ ! -e /tmp/stop ]; do
    seek=$((1280 + (i % 8) * 4))
    dd if=/tmp/pat of="$DEV" bs=64k seek=$seek count=4 oflag=direct 2>/dev/null || echo "JVHOST-BG-FAIL write $i"
    got=$(dd if="$DEV" bs=64k skip=$seek count=4 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || echo "JVHOST-BG-FAIL verify $i $got"
    i=$((i + 1))
    echo $i > /tmp/rounds
  done
) &
bg=$!
# some I/O before the host plugs the DIMM
while [ "$(cat /tmp/rounds 2>/dev/null || echo 0)" -lt 3 ]; do sleep 0.1; done
before=$(cat /sys/devices/system/memory/memory*/state | grep -c offline)
echo "JVHOST-HOTPLUG-READY offline=$before"
read -r ignored
r0=$(cat /tmp/rounds)
# the I/O keeps going while the guest takes the memory in: let a few more rounds run
n=0
while :; do
  off=$(cat /sys/devices/system/memory/memory*/state | grep -c offline)
  [ "$off" -gt "$before" ] && break
  n=$((n + 1))
  [ $n -le 600 ] || { echo "JVHOST-HOTPLUG-FAIL no new memory blocks"; exit 1; }
  sleep 0.1
done
while [ "$(cat /tmp/rounds)" -lt $((r0 + 3)) ]; do sleep 0.1; done
touch /tmp/stop
wait $bg
echo "JVHOST-BG-ROUNDS $(cat /tmp/rounds)"
onlined=0
for m in /sys/devices/system/memory/memory*; do
  if [ "$(cat $m/state)" = offline ]; then
    echo online_movable > $m/state || { echo "JVHOST-HOTPLUG-FAIL cannot online $m"; exit 1; }
    onlined=$((onlined + 1))
  fi
done
echo "JVHOST-ONLINED $onlined"
echo 3 > /proc/sys/vm/drop_caches
# pages of the Movable zone in use (managed - nr_free_pages), highest seen while the workload runs
movable_used() {
  awk '/^Node .* zone +Movable/ {z=1; next} /^Node/ {z=0} z && $1=="nr_free_pages" {f=$2} z && $1=="managed" {m=$2} END {print m - f}' /proc/zoneinfo
}
echo 0 > /tmp/maxused
(
  while [ ! -e /tmp/stop2 ]; do
    u=$(movable_used)
    [ "$u" -gt "$(cat /tmp/maxused)" ] && echo "$u" > /tmp/maxused
    sleep 0.2
  done
) &
sampler=$!
sh /blk-workload.sh "$DEV" hp
rc=$?
touch /tmp/stop2
wait $sampler
echo "JVHOST-MOVABLE-USED $(cat /tmp/maxused)"
exit $rc
