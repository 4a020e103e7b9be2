#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs one command under another kernel, in a throw-away qemu guest that sees this machine's
# root filesystem read-only (9p) and a writable scratch export, and hands back the command's
# stdout, stderr and exit code as its own.
#
#   kernels/run-in-vm.sh [options] -- COMMAND [ARG...]
#
#   --kernel PATH     guest kernel (default: the newest /boot/vmlinuz-* that is not running)
#   --timeout S       wall-clock bound of the whole guest run, boot included (default 300)
#   --mem MiB         guest memory (default 2048)
#   --smp N           guest CPUs (default 2)
#   --out DIR         copy what the command wrote to $DT_VM_OUT (guest) into DIR (host)
#   --console FILE    keep the guest's serial console (kernel log) in FILE
#   --install         only install what is missing (qemu, a kernel, busybox) and exit
#
# The command runs as root in the shared root with the host's current directory as its working
# directory (same path in the guest), with fresh proc, sys, dev, tracefs, debugfs, bpffs and
# cgroup2 mounts, and tmpfs on /tmp and /run. Kernel modules load on demand from the shared
# root's /lib/modules. The guest has no network device.
#
# Exit status: the command's; 124 when the bound was hit; 125 when the harness itself failed
# (no boot, no result), with the console's last lines on stderr; 130/143 on SIGINT/SIGTERM.
# Nothing is left behind: qemu dies with this script (even on SIGKILL, through
# PR_SET_PDEATHSIG) and the temporary directory is removed.
set -euo pipefail

say() { printf 'run-in-vm: %s\n' "$*" >&2; }
die() { say "$*"; exit 125; }

kernel='' timeout_s=300 mem=2048 smp=2 out='' console='' install_only=0
while (($#)); do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --console) console=$2; shift 2 ;;
    --install) install_only=1; shift ;;
    --) shift; break ;;
    -h|--help) awk 'NR > 2 && !/^#/ { exit } NR > 2' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] || die "--timeout wants a positive number of seconds, got '$timeout_s'"
((install_only)) || (($#)) || die "no command given: kernels/run-in-vm.sh [options] -- COMMAND [ARG...]"
[[ $(id -u) -eq 0 ]] || die "needs root (sharing / read-only keeps root-owned files readable only to root)"

# --- what the harness needs, installed from Debian at first use (idempotent) -------------------
newest_kernel() {
  local k
  for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V); do
    [[ ${k#/boot/vmlinuz-} != "$(uname -r)" && -d /lib/modules/${k#/boot/vmlinuz-} ]] && echo "$k"
  done | tail -n 1
}
static_busybox() {
  local b list
  for b in /bin/busybox /usr/bin/busybox; do
    [[ -x $b ]] || continue
    ldd "$b" >/dev/null 2>&1 && continue # dynamically linked: useless in an initramfs
    list=$("$b" --list 2>/dev/null) || continue
    grep -qx insmod <<<"$list" && grep -qx chroot <<<"$list" && { echo "$b"; return; }
  done
}
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
[[ -n $(static_busybox) ]] || missing+=(busybox-static)
[[ -n $kernel || -n $(newest_kernel) ]] || missing+=(linux-image-amd64)
if ((${#missing[@]})); then
  say "installing ${missing[*]} (first use)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || die "apt-get install ${missing[*]} failed"
fi
((install_only)) && exit 0

[[ -n $kernel ]] || kernel=$(newest_kernel)
[[ -n $kernel && -r $kernel ]] || die "no guest kernel: pass --kernel or install linux-image-amd64"
kver=${kernel##*/vmlinuz-}
# A kernel unpacked into a cache directory (DIR/boot/vmlinuz-V with DIR/lib/modules/V, as
# kernels/fetch.sh leaves it) brings its own modules; the guest sees them at /lib/modules/V, and
# the host's /lib/modules is never written. A kernel in /boot uses the host's /lib/modules.
modroot=$(cd "$(dirname "$kernel")/.." && pwd)
[[ -d $modroot/lib/modules/$kver ]] || modroot=/
[[ -d $modroot/lib/modules/$kver ]] || die "no /lib/modules/$kver for $kernel (nor next to it)"
busybox=$(static_busybox)
[[ -n $busybox ]] || die "no statically linked busybox (apt-get install busybox-static)"

# --- temporary directory, and cleanup on every way out ---------------------------------------
# Directories of runs that were SIGKILLed (their trap never ran) are removed here.
for d in /tmp/droptrace-vm.*; do
  [[ -d $d ]] || continue
  pid=${d##*.}; pid=${pid%%-*}
  [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null && rm -rf "$d"
done
tmp=$(mktemp -d "/tmp/droptrace-vm.$$-XXXXXX")
qpid=''
cleanup() {
  if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM HUP

# --- initramfs: busybox, the modules 9p needs (in dependency order), /init ---------------------
root=$tmp/initramfs
mkdir -p "$root"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$busybox" "$root/bin/busybox"
: >"$root/modules.order"
for m in virtio_pci 9pnet_virtio 9p; do
  modprobe -d "$modroot" -S "$kver" --show-depends "$m" 2>/dev/null | while read -r verb path _; do
    [[ $verb == insmod ]] || continue
    name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
    grep -qx "$name" "$root/modules.order" && continue
    case $path in
      *.xz) xz -dc "$path" >"$root/lib/modules/$name" ;;
      *.zst) zstd -qdc "$path" >"$root/lib/modules/$name" ;;
      *.gz) gzip -dc "$path" >"$root/lib/modules/$name" ;;
      *) cp "$path" "$root/lib/modules/$name" ;;
    esac
    echo "$name" >>"$root/modules.order"
  done
done

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() { echo "vm-init: $*" >/dev/console; poweroff -f; }
for m in $(cat /modules.order); do insmod "/lib/modules/$m" || fail "insmod $m failed"; done
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$o,ro,cache=loose" hostroot /newroot || fail "mounting the host root (9p) failed"
r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs tmpfs $r/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mount -t tmpfs -o mode=755 tmpfs $r/run
mkdir -p $r/run/vm
mount -t 9p -o "$o" scratch $r/run/vm || fail "mounting the scratch export (9p) failed"
# A working directory under /tmp or /run (a CI clone in /tmp) is hidden by the tmpfs above:
# it comes as its own read-only export, mounted back at the same path (its path in
# /workdir.path: a file named like the 9p tag would make busybox mount try a loop device).
if [ -s /workdir.path ]; then
  w=$(cat /workdir.path)
  mkdir -p "$r$w"
  mount -t 9p -o "$o,ro,cache=loose" workdir "$r$w" || fail "mounting the working directory (9p) failed"
fi
mount -t tracefs tracefs $r/sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs $r/sys/kernel/debug 2>/dev/null
mount -t bpf bpf $r/sys/fs/bpf 2>/dev/null
if [ -s /modroot.path ]; then
  m=$(cat /modroot.path) v=$(uname -r)
  mount -t tmpfs -o mode=755 tmpfs $r/lib/modules || fail "tmpfs on /lib/modules failed"
  mkdir -p $r/lib/modules/$v
  mount --bind "$r$m/lib/modules/$v" $r/lib/modules/$v || fail "binding $m/lib/modules/$v failed"
fi
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup 2>/dev/null
# Modules the command needs (veth, nf_tables, ...) load from the shared root's /lib/modules.
echo /bin/modprobe-in-root >/proc/sys/kernel/modprobe
ip link set lo up 2>/dev/null
hostname droptrace-vm
echo "vm-init: running command" >/dev/console
chroot $r /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM=dumb LANG=C.UTF-8 DT_VM=1 DT_VM_OUT=/run/vm/out \
  /bin/sh /run/vm/cmd.sh >$r/run/vm/stdout 2>$r/run/vm/stderr </dev/null
echo $? >$r/run/vm/rc.tmp && mv $r/run/vm/rc.tmp $r/run/vm/rc
sync
umount $r/run/vm
poweroff -f
INIT
cat >"$root/bin/modprobe-in-root" <<'MP'
#!/bin/busybox sh
exec /bin/busybox chroot /newroot /sbin/modprobe "$@"
MP
chmod +x "$root/init" "$root/bin/modprobe-in-root"
[[ $modroot != / ]] && printf "%s" "$modroot" >"$root/modroot.path"
workdir=()
case "$PWD/" in
  /tmp/* | /run/*)
    printf "%s" "$PWD" >"$root/workdir.path"
    workdir=(-virtfs "local,path=$PWD,mount_tag=workdir,security_model=none,readonly=on,multidevs=remap")
    ;;
esac
(cd "$root" && find . | cpio -o -H newc --quiet) >"$tmp/initramfs.cpio"

# --- the command ------------------------------------------------------------------------------
scratch=$tmp/scratch
mkdir -p "$scratch/out"
chmod 755 "$scratch"
{
  echo 'cd '"$(printf '%q' "$PWD")"' 2>/dev/null || cd /'
  printf 'exec'; printf ' %q' "$@"; echo
} >"$scratch/cmd.sh"

# --- boot -----------------------------------------------------------------------------------
accel=(-accel tcg,thread=multi)
# KVM only when it really works (a /dev/kvm node can exist without VT-x/AMD-V).
grep -qE '\b(vmx|svm)\b' /proc/cpuinfo && [[ -w /dev/kvm ]] && accel=(-accel kvm -cpu host)
((${#accel[@]} == 2)) && accel+=(-cpu max)
log=$tmp/console.log
started=$(date +%s.%N)
# setpriv --pdeathsig: timeout dies with this shell, and qemu with timeout, even on SIGKILL.
setpriv --pdeathsig KILL timeout -k 5 "$timeout_s" \
  setpriv --pdeathsig KILL qemu-system-x86_64 "${accel[@]}" -m "$mem" -smp "$smp" \
    -kernel "$kernel" -initrd "$tmp/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init mitigations=off" \
    -display none -monitor none -serial "file:$log" -nic none -no-reboot \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$scratch,mount_tag=scratch,security_model=none,multidevs=remap" \
    "${workdir[@]}" \
    </dev/null >"$tmp/qemu.out" 2>&1 &
qpid=$!
set +e
wait "$qpid"
qrc=$?
set -e
qpid=''
elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
[[ -n $console ]] && cp "$log" "$console"
[[ -n $out ]] && mkdir -p "$out" && cp -a "$scratch/out/." "$out/"

if [[ ! -s $scratch/rc ]]; then
  if ((qrc == 124 || qrc == 137)); then
    say "timed out after ${timeout_s}s (kernel $kver); last console lines:"
    tail -n 15 "$log" >&2 || true
    [[ -s $scratch/stderr ]] && { say "command's stderr so far:"; tail -n 15 "$scratch/stderr" >&2; }
    exit 124
  fi
  say "no result from the guest (qemu exit $qrc, kernel $kver, ${elapsed}s); qemu said:"
  tail -n 5 "$tmp/qemu.out" >&2 || true
  say "last console lines:"
  tail -n 25 "$log" >&2 || true
  exit 125
fi
cat "$scratch/stdout"
cat "$scratch/stderr" >&2
rc=$(<"$scratch/rc")
[[ -n ${DT_VM_TIMING:-} ]] && say "kernel $kver: ${elapsed}s wall, boot + command + power-off"
exit "$rc"
