#!/bin/busybox sh
# /init of the jvhost QEMU test guest (copied into the initramfs by build-initramfs.sh).
# Mounts the pseudo file systems, loads the storage modules listed in /lib/modules/load-order,
# prints JVHOST-GUEST-BOOTED, runs /guest-test.sh (appended per test as a second cpio archive)
# and prints JVHOST-GUEST-EXIT <code> before powering off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /mnt /root /run
# The kernel could not open /dev/console before devtmpfs existed unless the archive had the
# node; reopen it so the script's stdin/stdout are the serial console in every case.
exec </dev/console >/dev/console 2>&1
# Lines the host sends with sendLine() must not be echoed back into the log.
stty -echo 2>/dev/null
while read -r m; do
  [ -n "$m" ] || continue
  if ! err=$(insmod "/lib/modules/$m.ko" 2>&1); then
    echo "JVHOST-INIT: insmod $m failed: $err"
  fi
done < /lib/modules/load-order
# Firmware output may still be on the current line; start the marker on a fresh one.
echo
echo "JVHOST-GUEST-BOOTED"
rc=0
if [ -f /guest-test.sh ]; then
  cd /tmp
  sh /guest-test.sh
  rc=$?
  cd /
fi
echo "JVHOST-GUEST-EXIT $rc"
sync
sleep 1
poweroff -f
# Not reached unless poweroff failed; never let init exit (that would panic).
while :; do sleep 60; done
