#!/bin/sh
# Guest-side virtio-blk workload (busybox sh), run inside the jvhost test guest:
#   blk-workload.sh DEVICE TAG [FS_KIB]
# 1. Raw I/O: writes a position-dependent pattern to regions of many sizes (512 B .. 4 MiB, odd
#    multiples of 512) at 4K-aligned and unaligned offsets above the file system area, with
#    O_DIRECT where the size is >= 4 KiB, drops the page cache, reads every region back with
#    O_DIRECT and compares. For every region it prints
#      JVHOST-MD5 <device-byte-offset> <length> <md5> <tag>
#    so the host can check the backing file byte for byte (QemuGuest.verifyMd5Lines).
# 2. Checks /sys/block/<dev>/stat: read/written sectors went up by at least the bytes moved.
# 3. File system: mke2fs on the first FS_KIB KiB (default 24576) only, so the raw regions stay
#    intact; writes files (some multi-MiB), syncs, unmounts, remounts, verifies md5s, unmounts.
# Prints JVHOST-BLK-OK <tag> and exits 0, or JVHOST-BLK-FAIL <tag> <reason> and exits 1.
#
# Pattern: every 512-byte sector written at device byte offset X holds
#   "jvhost <tag> sector <X/512 as 12 digits> " + a filler that shifts with the sector number,
# so a write that lands at the wrong offset, on the wrong device or is torn is caught.

DEV=${1:?usage: blk-workload.sh DEVICE TAG [FS_KIB]}
TAG=${2:?usage: blk-workload.sh DEVICE TAG [FS_KIB]}
FS_KIB=${3:-24576}
NAME=${DEV##*/}
W=/tmp/blkw.$NAME
LOG=$W/log

fail() {
  echo "JVHOST-BLK-FAIL $TAG $*"
  if [ -s "$LOG" ]; then sed 's/^/  | /' "$LOG" | tail -n 20; fi
  exit 1
}
# run CMD...: runs a command with its output in $LOG, fails the workload when it fails.
run() {
  "$@" > "$LOG" 2>&1 || fail "command failed ($?): $*"
}

mkdir -p "$W" || fail "cannot create $W"
: > "$LOG"

# The device may show up a moment after the driver loaded (and after hot-plug).
i=0
while [ ! -b "$DEV" ] || [ ! -e "/sys/block/$NAME/size" ]; do
  i=$((i + 1))
  [ $i -le 300 ] || fail "device $DEV did not appear"
  sleep 0.1
done
SECTORS=$(cat "/sys/block/$NAME/size")
SIZE=$((SECTORS * 512))
FS_BYTES=$((FS_KIB * 1024))
RAW=$FS_BYTES
NEED=$((RAW + 14 * 1048576 + 1048576))
[ "$SIZE" -ge "$NEED" ] || fail "device $DEV has $SIZE bytes, the workload needs $NEED"

# gen FIRST_SECTOR NSECTORS FILE: the pattern for device sectors FIRST_SECTOR.. into FILE.
gen() {
  awk -v s="$1" -v n="$2" -v tag="$TAG" 'BEGIN {
    a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    fill = ""
    for (k = 0; k < 10; k++) fill = fill a
    for (i = s; i < s + n; i++) {
      h = sprintf("jvhost %s sector %012d ", tag, i)
      printf "%s%s\n", h, substr(fill, (i * 7) % 64 + 1, 511 - length(h))
    }
  }' > "$3" || fail "pattern generator failed"
}

stat_field() { # FIELD (1-based) of /sys/block/<dev>/stat
  awk -v f="$1" '{ print $f }' "/sys/block/$NAME/stat"
}

# ------------------------------------------------------------------ 1. raw regions
# name base offset length write-bs   (base R = start of the raw area, E = end of device)
REGIONS="
p E -512 512 512
o E -66048 65536 65536
k R 4194304 4194304 4194304
a R 0 512 512
c R 2048 4096 4096
b R 512 1536 512
d R 6144 3584 512
e R 16384 4096 4096
g R 131072 65536 65536
f R 20992 65536 65536
h R 197632 130048 130048
i R 1048576 1048576 1048576
j R 2100736 1048576 1048576
l R 8391168 4194304 1048576
m R 12585472 512 512
n R 13631488 196608 65536
"
WBYTES=0
RBYTES=0
R0=$(stat_field 3)
W0=$(stat_field 7)
echo "$REGIONS" > "$W/spec"
while read -r name base off len bs; do
  [ -n "$name" ] || continue
  if [ "$base" = E ]; then off=$((SIZE + off)); else off=$((RAW + off)); fi
  gen $((off / 512)) $((len / 512)) "$W/r.$name"
  echo "$name $off $len $bs" >> "$W/regions"
  if [ "$len" -ge 4096 ]; then flags=oflag=seek_bytes,direct; else flags=oflag=seek_bytes; fi
  run dd if="$W/r.$name" of="$DEV" bs="$bs" count=$((len / bs)) seek="$off" $flags conv=notrunc,fsync
done < "$W/spec"
[ -s "$W/regions" ] || fail "no regions written"
sync
echo 3 > /proc/sys/vm/drop_caches
while read -r name off len bs; do
  expect=$(md5sum < "$W/r.$name") || fail "md5sum failed"
  expect=${expect%% *}
  rm -f "$W/rb"
  if [ "$len" -ge 4096 ]; then flags=iflag=skip_bytes,direct; else flags=iflag=skip_bytes; fi
  run dd if="$DEV" of="$W/rb" bs="$bs" count=$((len / bs)) skip="$off" $flags
  got=$(md5sum < "$W/rb")
  got=${got%% *}
  if [ "$got" != "$expect" ]; then
    first=$(cmp "$W/r.$name" "$W/rb" 2>&1 | head -n 1)
    fail "region $name offset $off length $len: read back md5 $got, wrote $expect ($first)"
  fi
  echo "JVHOST-MD5 $off $len $expect $TAG"
  WBYTES=$((WBYTES + len))
  RBYTES=$((RBYTES + len))
done < "$W/regions"
rm -f "$W"/r.* "$W/rb"

# ------------------------------------------------------------------ 2. block layer counters
R1=$(stat_field 3)
W1=$(stat_field 7)
DR=$((R1 - R0))
DW=$((W1 - W0))
[ "$DW" -ge $((WBYTES / 512)) ] || fail "stat: $DW sectors written, expected >= $((WBYTES / 512))"
[ "$DR" -ge $((RBYTES / 512)) ] || fail "stat: $DR sectors read, expected >= $((RBYTES / 512))"
echo "JVHOST-BLK-INFO $TAG raw regions ok: $WBYTES bytes, stat +$DW sectors written +$DR read"

# ------------------------------------------------------------------ 3. file system
MNT=/mnt/blkw.$NAME
mkdir -p "$MNT" || fail "cannot create $MNT"
# busybox mke2fs only makes ext2 (no -t); the kernel mounts it with the ext4 driver.
if mke2fs --help 2>&1 | grep -q -- ' -t '; then
  run mke2fs -F -t ext4 "$DEV" "$FS_KIB"
  FSTYPE=ext4
else
  run mke2fs -F "$DEV" "$FS_KIB"
  FSTYPE=ext2
fi
run mount -t "$FSTYPE" "$DEV" "$MNT"
gen 50000000 12288 "$W/fs.src"   # 6 MiB, sector numbers beyond any device in the tests
mkfile() { # NAME SKIP_BYTES LENGTH
  run dd if="$W/fs.src" of="$W/f.$1" bs=4096 skip="$2" count="$3" iflag=skip_bytes,count_bytes
}
mkfile one 7 1
mkfile page 4096 4096
mkfile odd 1000 100000
mkfile mib 65536 1048576
mkfile big3 12345 3145851
mkfile big5 512 5242880
mkdir -p "$MNT/small" || fail "mkdir on $FSTYPE failed"
: > "$W/sums"
for f in one page odd mib big3 big5; do
  run cp "$W/f.$f" "$MNT/$f"
  s=$(md5sum < "$W/f.$f"); echo "${s%% *}  $MNT/$f" >> "$W/sums"
done
n=0
while [ $n -lt 40 ]; do
  echo "small file $n of $TAG" > "$MNT/small/s$n" || fail "writing small file $n failed"
  echo "$(echo "small file $n of $TAG" | md5sum | cut -d' ' -f1)  $MNT/small/s$n" >> "$W/sums"
  n=$((n + 1))
done
rm -f "$W"/f.* "$W/fs.src"
run sync
run umount "$MNT"
echo 3 > /proc/sys/vm/drop_caches
run mount -t "$FSTYPE" "$DEV" "$MNT"
md5sum -c "$W/sums" > "$LOG" 2>&1 || fail "file contents differ after remount"
[ "$(ls "$MNT/small" | wc -l)" -eq 40 ] || fail "expected 40 small files after remount"
run umount "$MNT"
rm -rf "$W"
echo "JVHOST-BLK-OK $TAG"
exit 0
