#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The BPF half of the node-gyp build (binding.gyp): vmlinux.h, one CO-RE object per
# probes/*.bpf.c and its libbpf skeleton header, with the commands and flags of
# native/CMakeLists.txt (test/native/build.e2e.test.ts checks that both builds produce the
# same objects). A new probes/X.bpf.c is picked up without an edit here.
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

# the names CMakeLists.txt's find_program() accepts, in its order
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
