#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Regenerates vmlinux.h (kernel type definitions for CO-RE) from the running kernel's BTF.
# The build calls it; the output goes to the build directory and is never committed.
# Usage: probes/gen-vmlinux.sh OUT [BTF_FILE]
set -eu
out=$1
btf=${2:-/sys/kernel/btf/vmlinux}
if [ ! -r "$btf" ]; then
  echo "droptrace build: no kernel BTF at $btf: build on a kernel with CONFIG_DEBUG_INFO_BTF=y (5.8+)" >&2
  exit 1
fi
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
"$bpftool" btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
