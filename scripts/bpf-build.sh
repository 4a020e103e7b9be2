#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The BPF half of both native builds, node-gyp's (binding.gyp) and cmake-js's
# (native/CMakeLists.txt): vmlinux.h, one CO-RE object per probes/*.bpf.c and its libbpf
# skeleton header. One script, so the two builds cannot drift (test/native/build.e2e.test.ts
# still checks that they produce the same objects). A new probes/X.bpf.c is picked up without
# an edit here.
# Usage: scripts/bpf-build.sh OUTDIR          build into OUTDIR
#        scripts/bpf-build.sh --outputs OUTDIR  print the files it writes (for binding.gyp)
set -eu
cd "$(dirname "$0")/.."
probes=$(pwd)/probes
list=
if [ "${1:-}" = --outputs ]; then list=1; shift; fi
[ $# -eq 1 ] || { echo "usage: scripts/bpf-build.sh [--outputs] OUTDIR" >&2; exit 2; }
out=$1
objs=$(cd probes && ls -- *.bpf.c | sed 's/\.bpf\.c$//')
if [ -n "$list" ]; then
  echo "$out/vmlinux.h"
  for obj in $objs; do echo "$out/$obj.bpf.o" "$out/$obj.skel.h"; done
  exit 0
fi

# the first of these names found on PATH (or in /usr/sbin, /sbin)
tool() {
  for t in "$@"; do
    p=$(PATH=$PATH:/usr/sbin:/sbin command -v "$t" 2>/dev/null) && { echo "$p"; return; }
  done
  echo "droptrace build: $1 not found (Debian: apt-get install clang llvm bpftool)" >&2
  exit 1
}
clang=$(tool clang clang-14)
strip=$(tool llvm-strip llvm-strip-14)
bpftool=$(tool bpftool)

mkdir -p "$out"
out=$(cd "$out" && pwd)
sh "$probes/gen-vmlinux.sh" "$out/vmlinux.h"
for obj in $objs; do
  "$clang" -g -O2 -Wall -target bpf -D__TARGET_ARCH_x86 -I"$out" -I"$probes" \
    -c "$probes/$obj.bpf.c" -o "$out/$obj.bpf.o"
  "$strip" -g "$out/$obj.bpf.o"
  "$bpftool" gen skeleton "$out/$obj.bpf.o" name "${obj}_bpf" > "$out/$obj.skel.h.tmp"
  mv "$out/$obj.skel.h.tmp" "$out/$obj.skel.h"
done
