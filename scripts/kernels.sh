#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The kernel matrix (`npm run test:kernels`): this machine's kernel natively, plus every other
# kernel under qemu (default: the newest one in /boot, Debian's linux-image-amd64, installed at
# first use), each running kernels/exercise.ts (compiled: dist/kernels/exercise.js). Writes
# kernels/results/matrix.json and renders docs/kernels.md from it. Exit 0 only when every kernel
# met every expectation.
#
#   scripts/kernels.sh [--smoke] [--kernel /boot/vmlinuz-X]... [--no-native] [--no-global] [--timeout S]
#
#   --smoke       the smoke set only (check, reason names, two drops): about 40 s a guest
#   --kernel K    a guest kernel to boot (repeatable); its modules must be in /lib/modules
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
if ((${#guests[@]} == 0)); then
  running=$(uname -r)
  k=$(ls -1 /boot/vmlinuz-* 2>/dev/null | grep -v -- "-$running\$" | sort -V | tail -n 1 || true)
  [[ -n $k ]] && guests=("$k")
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
