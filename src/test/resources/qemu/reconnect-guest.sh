#!/bin/sh
# Reconnect workload (busybox sh) for JvhostReconnectQemuTest:
#   reconnect-guest.sh DEVICE
# Two writers run until the host sends a line: each round writes a fresh random 256 KiB block
# (O_DIRECT) to one of 8 slots of its own, reads it back and compares its md5, and prints
# JVHOST-ROUND <writer> <n>. Meanwhile the host kills and restarts jvhost. Then every slot is
# read back once more and compared with the md5 of what was last written there (also printed as
# JVHOST-MD5 lines for the host), and the kernel log is searched for I/O errors.
DEV=${1:?usage: reconnect-guest.sh DEVICE}
writer() {
  w=$1
  n=0
  while [ ! -e /tmp/stop ]; do
    slot=$((w * 8 + n % 8))
    f=/tmp/w$w.blk
    dd if=/dev/urandom of=$f bs=64k count=4 2>/dev/null
    sum=$(md5sum < $f | cut -d' ' -f1)
    # record the md5 before the write: a write interrupted by the stop is still verified
    echo "$sum" > /tmp/slot.$slot
    if ! dd if=$f of="$DEV" bs=256k seek=$slot count=1 oflag=direct 2>/tmp/w$w.err; then
      echo "JVHOST-RECONNECT-FAIL write $w $n $(cat /tmp/w$w.err)"
    fi
    got=$(dd if="$DEV" bs=256k skip=$slot count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
    [ "$got" = "$sum" ] || echo "JVHOST-RECONNECT-FAIL verify $w $n slot $slot"
    n=$((n + 1))
    echo "JVHOST-ROUND $w $n"
  done
}
writer 0 &
p0=$!
writer 1 &
p1=$!
read -r ignored
touch /tmp/stop
wait $p0
wait $p1
bad=0
for f in /tmp/slot.*; do
  slot=${f#/tmp/slot.}
  want=$(cat $f)
  got=$(dd if="$DEV" bs=256k skip=$slot count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
  if [ "$got" = "$want" ]; then
    echo "JVHOST-MD5 $((slot * 262144)) 262144 $want rc"
  else
    echo "JVHOST-RECONNECT-FAIL final slot $slot"
    bad=1
  fi
done
dmesg | grep -iE "i/o error|blk_update_request|buffer i/o|critical medium|hung task" | sed 's/^/JVHOST-DMESG-ERROR /'
dmesg | grep -iE "i/o error|blk_update_request|buffer i/o|critical medium|hung task" >/dev/null && bad=1
[ $bad -eq 0 ] && echo JVHOST-RECONNECT-OK
exit $bad
