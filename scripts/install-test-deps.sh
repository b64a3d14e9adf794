#!/usr/bin/env bash
# Installs the Debian packages the QEMU guest tests need, when they are missing:
# qemu-system-x86 (QEMU 7.2), a guest kernel (linux-image-amd64), busybox-static for the
# initramfs (with cpio and xz-utils to build it), sg3-utils for SCSI checks inside the guest,
# qemu-utils (qemu-storage-daemon), tmux (the terminal test of `jvhost top`); for the Ceph RBD tests
# ceph-mon, ceph-osd, ceph-common and librbd1 (Debian's Ceph 16).
set -euo pipefail

# A few 2 MiB hugepages for the `bench --hugepages` tests (HugePagesBenchTest skips without
# them). Only as root, only grown (never shrunk), and small: 64 pages = 128 MiB.
reserve_hugepages() {
  local want=64 pool=/sys/kernel/mm/hugepages/hugepages-2048kB
  [ -d "$pool" ] || { echo "install-test-deps: no 2 MiB hugepages in this kernel; hugepage tests will be skipped"; return 0; }
  local total free resv avail
  total=$(cat "$pool/nr_hugepages"); free=$(cat "$pool/free_hugepages"); resv=$(cat "$pool/resv_hugepages")
  avail=$((free - resv))
  [ "$avail" -ge "$want" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: only $avail free 2 MiB hugepages and not root; hugepage tests will be skipped" \
         "(as root: echo $((total + want - avail)) > $pool/nr_hugepages)"
    return 0
  fi
  echo $((total + want - avail)) > "$pool/nr_hugepages" || true
  echo "install-test-deps: 2 MiB hugepages: $(cat "$pool/nr_hugepages") reserved, $(cat "$pool/free_hugepages") free"
}
reserve_hugepages

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
# (busybox-static has a mke2fs applet, no mkfs.ext2; grep without -q: under pipefail an early
# exit would SIGPIPE busybox and fail the pipeline)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x mke2fs >/dev/null || need+=(busybox-static)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v sg_inq >/dev/null 2>&1 || need+=(sg3-utils)
command -v qemu-storage-daemon >/dev/null 2>&1 || need+=(qemu-utils)
command -v mvn >/dev/null 2>&1 || need+=(maven)
# tmux: TopTmuxTest drives 'jvhost top' in a real terminal (skipped with a message without it)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# Ceph RBD tests (tag "ceph"): a single-node cluster started by scripts/ceph-cluster.sh needs the
# mon and OSD daemons and the ceph/rbd tools; librbd1/librados2 are what jvhost loads through FFM.
command -v ceph-mon >/dev/null 2>&1 || need+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || need+=(ceph-osd)
command -v rbd >/dev/null 2>&1 || need+=(ceph-common)
ls /usr/lib/*/librbd.so.1 >/dev/null 2>&1 || need+=(librbd1)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "install-test-deps: installing ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
