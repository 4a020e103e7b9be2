#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The kernel matrix (`npm run test:kernels`): this machine's kernel natively, plus Debian's 5.10
# (bullseye), 6.1 (bookworm) and 6.12 (trixie) under qemu, fetched into a cache at first use
# (kernels/fetch.sh --matrix), each running kernels/exercise.ts (compiled:
# dist/kernels/exercise.js). Writes kernels/results/matrix.json and renders docs/kernels.md from
# it. Exit 0 only when every kernel met every expectation.
#
#   scripts/kernels.sh [--smoke] [--kernel K]... [--no-native] [--no-global] [--timeout S]
#
#   --smoke       the smoke set only (check, reason names, two drops): 70-100 s a guest
#   --kernel K    a guest kernel to boot instead of the default three (repeatable): an image path
#                 (/boot/vmlinuz-X: its modules in /lib/modules, or DIR/boot/vmlinuz-X with
#                 DIR/lib/modules/X), a version (5.10.0-32-amd64) or a series (5.10, 6.1, 6.12)
#                 of the cache, fetched when missing
#   --no-native   skip this machine's kernel
#   --no-global   natively, skip the scenarios that change machine-wide settings for a second or
#                 two (IPv6 gc_thresh3, nf_conntrack_max; restored right after); guests always run them
#   --timeout S   bound of one guest run, boot included (default 900)
#   --fault E=V   also a degraded pass on every kernel: droptrace with E=V in its environment
#                 (a knob that renames a probe's kernel function) must fall back to the floor
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'kernels: %s\n' "$*" >&2; }
set_=full native=1 global=1 timeout_s=900 guests=() faults=()
while (($#)); do
  case $1 in
    --smoke) set_=smoke; shift ;;
    --kernel) guests+=("$2"); shift 2 ;;
    --no-native) native=0; shift ;;
    --no-global) global=0; shift ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --fault) faults+=(--fault "$2"); shift 2 ;;
    -h|--help) awk 'NR > 2 && !/^#/ { exit } NR > 2' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown option $1 (see --help)"; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { say "needs root (BPF, network namespaces, qemu with / shared)"; exit 1; }

bash scripts/setup.sh
bash kernels/run-in-vm.sh --install
# versions and series go through the cache (fetched when missing); image paths are used as given
names=()
for k in ${guests[@]+"${guests[@]}"}; do [[ $k == */* ]] || names+=("$k"); done
if ((${#guests[@]} == 0)); then
  mapfile -t guests < <(bash kernels/fetch.sh --matrix) || true
  ((${#guests[@]} == 3)) || { say "could not fetch the guest kernels (kernels/fetch.sh --matrix)"; exit 1; }
elif ((${#names[@]})); then
  mapfile -t fetched < <(bash kernels/fetch.sh "${names[@]}") || true
  ((${#fetched[@]} == ${#names[@]})) || { say "could not fetch ${names[*]} (kernels/fetch.sh)"; exit 1; }
  paths=()
  for k in "${guests[@]}"; do [[ $k == */* ]] && paths+=("$k"); done
  guests=(${paths[@]+"${paths[@]}"} "${fetched[@]}")
fi

tmp=$(mktemp -d /tmp/droptrace-kernels.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM HUP
runs=()
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

if ((native)); then
  say "$(uname -r) natively, $set_ set"
  g=(); ((global)) && g=(--global)
  t=$(now); rc=0
  node dist/kernels/exercise.js --set "$set_" ${g[@]+"${g[@]}"} ${faults[@]+"${faults[@]}"} --out "$tmp/native.json" 2>"$tmp/native.err" || rc=$?
  runs+=("$tmp/native.json:$(since "$t"):$rc:$tmp/native.err")
  say "$(uname -r) natively: exit $rc in $(since "$t") s"
fi

i=0
for k in "${guests[@]}"; do
  i=$((i + 1))
  say "${k##*/vmlinuz-} under qemu, $set_ set"
  mkdir -p "$tmp/vm$i"
  t=$(now); rc=0
  DT_VM_TIMING=1 bash kernels/run-in-vm.sh --kernel "$k" --timeout "$timeout_s" --out "$tmp/vm$i" \
    -- node dist/kernels/exercise.js --set "$set_" ${faults[@]+"${faults[@]}"} --out /run/vm/out/result.json 2>"$tmp/vm$i.err" || rc=$?
  runs+=("$tmp/vm$i/result.json:$(since "$t"):$rc:$tmp/vm$i.err")
  say "${k##*/vmlinuz-} under qemu: exit $rc in $(since "$t") s"
done

mkdir -p kernels/results docs
node scripts/kernels-report.mjs kernels/results/matrix.json docs/kernels.md "${runs[@]}"
