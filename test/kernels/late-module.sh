#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In a guest (kernels/run-in-vm.sh): `droptrace stream` starts with nf_conntrack not loaded,
# then the module is loaded, as kube-proxy does after droptrace started at boot. Waits on lines,
# each wait bounded (60 s); the host side (late-module.e2e.test.ts) asserts on what is written
# to $DT_VM_OUT: stream.ndjson, stream.err, steps (what happened, in order), progs (the BPF
# programs left after the stream exited).
set -u
out=${DT_VM_OUT:?run me in kernels/run-in-vm.sh}
step() { echo "$*" >> "$out/steps"; }
wait_for() { # PATTERN: until stream.ndjson has it, at most 60 s
  i=0
  while [ $i -lt 600 ]; do grep -q "$1" "$out/stream.ndjson" && return 0; sleep 0.1; i=$((i + 1)); done
  return 1
}
if grep -q '^nf_conntrack ' /proc/modules || [ -d /sys/module/nf_conntrack ]; then
  step "nf_conntrack loaded before the stream"
  exit 0
fi
node dist/src/cli.js stream --stats-interval 600 --counters-interval 0 > "$out/stream.ndjson" 2> "$out/stream.err" &
pid=$!
wait_for '"type":"start"' && step start || step "no start line"
modprobe nf_conntrack && step "modprobe nf_conntrack" || step "modprobe failed: $?"
wait_for '"probe":"ct_alloc","state":"attached"' && step "stats line" || step "no stats line with ct_alloc attached"
kill -INT $pid
wait $pid
step "stream exit $?"
bpftool prog show > "$out/progs" 2>&1 && step "bpftool ok" || step "bpftool failed"
