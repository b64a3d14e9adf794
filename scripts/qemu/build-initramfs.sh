#!/usr/bin/env bash
# Builds the kernel + initramfs the QEMU guest tests boot:
#   build-initramfs.sh OUT_DIR
# OUT_DIR/kernel-path     one line: the kernel to pass to -kernel (OUT_DIR/vmlinux when PVH boot
#                         of the ELF extracted from /boot/vmlinuz-* works, else the bzImage)
# OUT_DIR/vmlinux         the extracted ELF kernel (only when it is used)
# OUT_DIR/initramfs.cpio  uncompressed newc archive: busybox, /init, storage modules in load
#                         order, sg3-utils tools with their libraries
# OUT_DIR/stamp           what the result was built from; a rerun with the same inputs does nothing
# Environment: JVHOST_GUEST_KVER=<version> picks a kernel (default: newest /boot/vmlinuz-* with
# modules), JVHOST_GUEST_NO_PVH=1 skips the PVH probe and uses the bzImage.
set -euo pipefail

die() { echo "build-initramfs: $*" >&2; exit 1; }
warn() { echo "build-initramfs: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

# ---------------------------------------------------------------- the installed kernel
kver="${JVHOST_GUEST_KVER:-}"
if [ -z "$kver" ]; then
  for f in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -rV); do
    v="${f#/boot/vmlinuz-}"
    if [ -f "/lib/modules/$v/modules.dep" ]; then kver="$v"; break; fi
  done
fi
[ -n "$kver" ] || die "no /boot/vmlinuz-* with /lib/modules/<version>/modules.dep (install linux-image-amd64)"
bzimage="/boot/vmlinuz-$kver"
moddir="/lib/modules/$kver"
[ -r "$bzimage" ] || die "$bzimage is not readable"
[ -x /bin/busybox ] || die "/bin/busybox missing (install busybox-static)"
command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"

sg_tools="sg_inq sg_vpd sg_readcap sg_modes sg_unmap sg_turs sg_luns"
qemu="$(command -v qemu-system-x86_64 || true)"

fingerprint() { # size and mtime of each existing argument
  local f
  for f in "$@"; do
    if [ -e "$f" ]; then stat -Lc '%n:%s:%Y' "$f"; else echo "$f:absent"; fi
  done
}
sg_paths=""
for t in $sg_tools; do sg_paths="$sg_paths $(command -v "$t" || echo "/nonexistent/$t")"; done
stamp="$( {
  echo "kver=$kver pvh-disabled=${JVHOST_GUEST_NO_PVH:-0} qemu=${qemu:-absent}"
  fingerprint "$bzimage" "$moddir/modules.dep" "$moddir/modules.builtin" "$moddir/modules.softdep" \
    /bin/busybox $sg_paths ${qemu:+"$qemu"}
  cat "${BASH_SOURCE[0]}" "$here/guest-init.sh"
} | md5sum | cut -d' ' -f1)"

# One build at a time per OUT_DIR (parallel test JVMs share target/qemu-guest).
if command -v flock >/dev/null; then
  exec 9>"$out/.lock"
  flock 9
fi

up_to_date() {
  [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -s "$out/initramfs.cpio" ] \
    && [ -s "$out/kernel-path" ] && [ -r "$(head -n1 "$out/kernel-path")" ]
}
if up_to_date; then exit 0; fi
rm -f "$out/stamp"

work="$(mktemp -d "$out/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,tmp,mnt,root,run,etc}

# ---------------------------------------------------------------- busybox
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$here/guest-init.sh" "$root/init"

# ---------------------------------------------------------------- modules
# Module names are normalised to underscores (kernel/lib/crc64-rocksoft.ko is crc64_rocksoft).
declare -A modfile=() moddeps=() builtin=() softpre=() alias_of=()
norm() { # path -> module name in $REPLY (no subshell: modules.dep has thousands of lines)
  REPLY="${1##*/}"; REPLY="${REPLY%%.ko*}"; REPLY="${REPLY//-/_}"
}
while IFS= read -r line; do
  f="${line%%:*}"
  norm "$f"; m="$REPLY"
  modfile[$m]="$f"
  d=""
  for dep in ${line#*:}; do norm "$dep"; d="$d $REPLY"; done
  moddeps[$m]="$d"
done < "$moddir/modules.dep"
if [ -f "$moddir/modules.builtin" ]; then
  while IFS= read -r f; do norm "$f"; builtin[$REPLY]=1; done < "$moddir/modules.builtin"
fi
if [ -f "$moddir/modules.softdep" ]; then
  while read -r kw m rest; do
    [ "$kw" = softdep ] || continue
    case " $rest " in *" pre: "*) ;; *) continue ;; esac
    pre="${rest#*pre:}"; pre="${pre%%post:*}"
    softpre[${m//-/_}]="$pre"
  done < "$moddir/modules.softdep"
fi
# Aliases used as soft dependencies (crypto-crc32c, crct10dif): prefer the *_generic module,
# the accelerated ones need CPU features TCG's default CPU model does not have.
resolve_alias() {
  local a="$1" m best=""
  if [ -n "${modfile[${a//-/_}]:-}" ] || [ -n "${builtin[${a//-/_}]:-}" ]; then echo "${a//-/_}"; return; fi
  for m in $(awk -v a="$a" '$1 == "alias" && $2 == a { print $3 }' "$moddir/modules.alias"); do
    m="${m//-/_}"
    case "$m" in *_generic) best="$m"; break ;; esac
    [ -n "$best" ] || best="$m"
  done
  echo "$best"
}
declare -A visited=()
order=()
visit() {
  local m="$1" p d
  [ -n "$m" ] || return 0
  [ -z "${visited[$m]:-}" ] || return 0
  visited[$m]=1
  [ -z "${builtin[$m]:-}" ] || return 0
  [ -n "${modfile[$m]:-}" ] || { warn "module $m is neither built in nor in $moddir"; return 1; }
  for p in ${softpre[$m]:-}; do visit "$(resolve_alias "$p")" || true; done
  for d in ${moddeps[$m]}; do visit "$d"; done
  order+=("$m")
}
# crc32c_generic before ext4/jbd2, crct10dif/crc64-rocksoft providers before sd_mod's t10-pi.
wanted="crc32c_generic crct10dif_generic crc64_rocksoft_generic
        virtio_pci virtio virtio_ring virtio_blk virtio_scsi scsi_mod sd_mod sg ext4"
for m in $wanted; do visit "$m" || die "required module $m not found for kernel $kver"; done
# ext2 is normally served by ext4 (CONFIG_EXT4_USE_FOR_EXT2); take the module if there is one.
if [ -n "${modfile[ext2]:-}" ]; then visit ext2; fi
: > "$root/lib/modules/load-order"
for m in "${order[@]}"; do
  src="${modfile[$m]}"
  case "$src" in /*) ;; *) src="$moddir/$src" ;; esac
  dst="$root/lib/modules/$m.ko"
  case "$src" in
    *.ko.xz)  xz -dc "$src" > "$dst" ;;
    *.ko.zst) zstd -qdc "$src" > "$dst" ;;
    *.ko.gz)  gzip -dc "$src" > "$dst" ;;
    *.ko)     cp "$src" "$dst" ;;
    *) die "unknown module file type: $src" ;;
  esac
  echo "$m" >> "$root/lib/modules/load-order"
done
echo "$kver" > "$root/lib/modules/kernel-version"

# ---------------------------------------------------------------- sg3-utils + shared libraries
copy_with_path() { # copy a file (following symlinks) to the same absolute path under $root
  mkdir -p "$root$(dirname "$1")"
  cp -L "$1" "$root$1"
}
for t in $sg_tools; do
  p="$(command -v "$t" || true)"
  if [ -z "$p" ]; then warn "$t not found (install sg3-utils); the guest will lack it"; continue; fi
  copy_with_path "$p"
  # "libx.so => /path/libx.so (0x..)" and "/lib64/ld-linux-x86-64.so.2 (0x..)" (the loader,
  # kept at its absolute path because it is the binary's PT_INTERP).
  for lib in $(ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    [ -e "$root$lib" ] || copy_with_path "$lib"
  done
done

# ---------------------------------------------------------------- the archive
# A tiny hand-written newc archive with /dev and /dev/console goes first so the kernel can open
# the console for /init (cpio cannot add a device node without root and mknod); the kernel
# unpacks concatenated archives in order.
newc_entry() { # name mode(octal) rdevmajor rdevminor ino
  local name="$1" namesize=$(( ${#1} + 1 ))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$5" "$((8#$2))" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0
  printf '%s\0' "$name"
  local pad=$(( (4 - (110 + namesize) % 4) % 4 ))
  [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero
}
{
  newc_entry dev 040755 0 0 1
  newc_entry dev/console 020600 5 1 2
  newc_entry 'TRAILER!!!' 0 0 0 0
} > "$work/dev.cpio"
(cd "$root" && find . -mindepth 1 | sed "s|^\./||" | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$work/main.cpio"
cat "$work/dev.cpio" "$work/main.cpio" > "$work/initramfs.cpio"
mv -f "$work/initramfs.cpio" "$out/initramfs.cpio"
printf '%s\n' "${order[@]}" > "$out/modules"

# ---------------------------------------------------------------- kernel: PVH ELF or bzImage
# The bzImage carries the compressed vmlinux; find the compressor's magic, decompress from
# there and keep the first candidate that yields an ELF file.
extract_vmlinux() { # bzImage dest
  local img="$1" dest="$2" magic cmd off
  for spec in "$(printf '\3757zXZ')|xz -dc --single-stream" \
              "$(printf '\050\265\057\375')|zstd -qdc" \
              "$(printf '\037\213\010')|gzip -dc"; do
    magic="${spec%%|*}"; cmd="${spec#*|}"
    command -v "${cmd%% *}" >/dev/null || continue
    for off in $(LC_ALL=C grep -obUa -- "$magic" "$img" 2>/dev/null | cut -d: -f1 | head -n 8); do
      tail -c +"$((off + 1))" "$img" | $cmd > "$dest" 2>/dev/null || true
      if [ "$(head -c 4 "$dest" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
        return 0
      fi
    done
  done
  rm -f "$dest"
  return 1
}
# Boots the candidate kernel with the fresh initramfs (no test script): /init must print the
# marker. Generous timeout: TCG on a loaded CI machine is slow.
boots() { # kernel
  local log="$work/probe.log"
  timeout 180 "$qemu" -accel tcg -nographic -no-reboot -nodefaults -serial stdio -m 256M \
    -machine pc -smp 1 -kernel "$1" -initrd "$out/initramfs.cpio" \
    -append "console=ttyS0 quiet panic=-1" </dev/null > "$log" 2>&1 || true
  grep -q JVHOST-GUEST-BOOTED "$log"
}
kernel="$bzimage"
rm -f "$out/vmlinux"
if [ "${JVHOST_GUEST_NO_PVH:-0}" != 1 ] && [ -n "$qemu" ] \
   && grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null; then
  if extract_vmlinux "$bzimage" "$work/vmlinux"; then
    if boots "$work/vmlinux"; then
      mv -f "$work/vmlinux" "$out/vmlinux"
      kernel="$out/vmlinux"
    else
      warn "PVH boot of the extracted vmlinux failed; using $bzimage. Probe output:"
      tail -n 20 "$work/probe.log" >&2
    fi
  else
    warn "could not extract an ELF vmlinux from $bzimage; using the bzImage"
  fi
fi
echo "$kernel" > "$out/kernel-path"
echo "$stamp" > "$out/stamp"
