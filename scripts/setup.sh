#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Brings a fresh Debian/Ubuntu machine to a built droptrace: installs what is missing (Debian
# packages, npm packages), mounts tracefs, builds the addon and the TypeScript when their
# sources changed. Quiet when there is nothing to do; safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'droptrace setup: %s\n' "$*" >&2; }

# command or file -> Debian package that provides it
need=(
  clang:clang llvm-strip:llvm bpftool:bpftool pkg-config:pkg-config cmake:cmake
  ip:iproute2 iptables:iptables nft:nftables conntrack:conntrack ethtool:ethtool
  bpftrace:bpftrace capsh:libcap2-bin tmux:tmux /usr/bin/python3:python3 tshark:tshark promtool:prometheus
  /usr/include/bpf/libbpf.h:libbpf-dev /usr/include/libelf.h:libelf-dev /usr/include/zlib.h:zlib1g-dev
  prometheus:prometheus
  # kubectl kustomize renders deploy/ in tests; any kubectl does (a cloud SDK's may own the path)
  kubectl:kubernetes-client
)
missing=()
for pair in "${need[@]}"; do
  what=${pair%%:*} pkg=${pair##*:}
  if [[ $what == /* ]]; then [[ -e $what ]] && continue
  else PATH=$PATH:/usr/sbin:/sbin command -v "$what" >/dev/null 2>&1 && continue; fi
  missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ $(id -u) -eq 0 ]] && ! [[ -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || say "could not mount tracefs on /sys/kernel/tracing"
fi

# newer SRC... than TARGET? (true when TARGET is missing)
stale() {
  local target=$1; shift
  [[ -e $target ]] || return 0
  [[ -n $(find "$@" -newer "$target" -type f -print -quit 2>/dev/null) ]]
}

if stale node_modules/.package-lock.json package.json package-lock.json; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

if stale build/Release/droptrace.node native probes/*.bpf.c probes/*.h probes/gen-vmlinux.sh; then
  say "building the native addon and BPF object"
  log=$(mktemp)
  if ! npx --no-install cmake-js compile --directory native --out build >"$log" 2>&1; then
    grep -E 'error|Error|FAILED' "$log" | head -20 >&2
    say "native build failed (full log: $log)"
    exit 1
  fi
  rm -f "$log"
  touch build/Release/droptrace.node
fi

# the TypeScript record layout, from the BPF object's BTF (commit the result when it changes);
# an installed package has no src/: its dist/ was built from the committed file
if [[ -d src ]] && stale src/gen/record.ts build/gen/droptrace.bpf.o scripts/gen-record.mjs; then
  say "generating src/gen/record.ts"
  node scripts/gen-record.mjs
fi

if stale dist/src/cli.js src bench kernels tsconfig.json; then
  say "compiling TypeScript"
  npx --no-install tsc -p tsconfig.json
  chmod +x dist/src/cli.js
fi
