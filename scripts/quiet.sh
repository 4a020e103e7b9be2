#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The quiet minute on a busy node (not part of npm test): what `droptrace stream` costs while
# nothing drops, on a node with many pods. Builds --pods network namespaces shaped like pods (a
# sleeping process in each, lo and a veth to a shared "node" namespace, an iptables conntrack
# rule so nf_conntrack is loaded per netns), starts `droptrace stream` with its default flags
# (stdout to a file), waits for its start line, and then reports over --duration seconds:
#   cpu   utime+stime of droptrace (/proc/PID/stat) over the window, as % of one core
#   rss   VmHWM (peak since start) and VmRSS at the end of the window (/proc/PID/status)
# plus what its last counters line saw (netns, cost of one sample) and how many drops it saw.
#
# droptrace traces every drop of the machine. On a shared machine another engineer's flood makes
# the node anything but quiet (hundreds of thousands of drop lines in the window): --own-drops
# passes --netns <the node namespace's inode>, so the kernel filters out every other drop before
# it reaches droptrace, and what is measured is droptrace on a quiet node again (the samplers and
# discovery still walk every netns of the machine). The drops line says whether it was needed.
#
# Everything happens in throw-away namespaces named dtquiet-<id>-*: veths exist only inside
# them, addresses are 198.18.0.0/15 (RFC 2544 benchmarking) only, no interface, route or rule
# of the host is touched. Everything is removed on exit, also on Ctrl-C or failure.
#
# Before and after in one run: --tree DIR (repeatable) names a built droptrace tree (its
# dist/src/cli.js and build/Release/droptrace.node; default this one), --rounds N measures each
# tree N times, alternating over the same namespaces, and a summary gives each tree's mean CPU
# and RSS and its ratio to the first tree's (alternating makes the other load of a shared
# machine fall on both alike). --profile DIR writes a CPU profile of each window there
# (bench/inside.ts, started on SIGUSR2 after the start line; open in Chrome's DevTools).
#
# Usage: sudo scripts/quiet.sh [--pods N] [--duration SECONDS] [--own-drops] [--tree DIR]... [--rounds N]
#                              [--profile DIR] [-- DROPTRACE_STREAM_ARGS...]
#   default: 250 pods, 30 s, this tree, 1 round
# Needs: root, a built droptrace (bash scripts/setup.sh), iptables, nsenter.
# Output, e.g.:
#   pods 250, window 30 s: cpu 2.10 s = 7.0% of a core; rss peak 142312 KiB, end 139876 KiB
#   counters: netns_total 256, scan.netns 256, cost_ms 310.2 (last sample)
#   (with --tree/--rounds each line is prefixed by "[tree N round R]", then a summary per tree)
set -euo pipefail
cd "$(dirname "$0")/.."

pods=250 duration=30 own=0 rounds=1 profile=
extra=() trees=()
while (($#)); do
  case $1 in
    --pods) pods=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --own-drops) own=1; shift ;;
    --tree) trees+=("$(cd "$2" && pwd)"); shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --profile) mkdir -p "$2"; profile=$(cd "$2" && pwd); shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '3,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quiet: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in pods duration rounds; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "quiet: --$v wants a positive whole number, got ${!v}" >&2; exit 2; }
done
((pods <= 1000)) || { echo "quiet: --pods at most 1000" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "quiet: needs root (BPF programs, network namespaces)" >&2; exit 1; }
((${#trees[@]})) || trees=("$PWD")
for t in "${trees[@]}"; do
  [[ -f $t/dist/src/cli.js && -f $t/build/Release/droptrace.node ]] || { echo "quiet: droptrace is not built in $t (bash scripts/setup.sh)" >&2; exit 1; }
done
[[ -z $profile || -f dist/bench/inside.js ]] || { echo "quiet: --profile needs dist/bench/inside.js (bash scripts/setup.sh)" >&2; exit 1; }

id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
pre=dtquiet-$id
node_ns=$pre-node
work=$(mktemp -d /tmp/dtquiet.XXXXXX)
dt_pid=

cleanup() {
  set +e
  [[ -n $dt_pid ]] && kill -TERM "$dt_pid" 2>/dev/null && wait "$dt_pid" 2>/dev/null
  for ns in $(ip netns list | awk '{print $1}' | grep "^$pre-"); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Namespaces and veths in one ip batch, addresses in one per netns; pod i is 198.18.H.L+2, its
# node end +1 (a /30 each): 198.18.0.0/15 holds 32768 of them.
addr() { local a=$(($1 * 4)); echo "198.$((18 + a / 65536)).$((a / 256 % 256)).$((a % 256 + $2))/30"; }
{
  echo "netns add $node_ns"
  for i in $(seq 0 $((pods - 1))); do
    echo "netns add $pre-p$i"
    echo "link add eth0 netns $pre-p$i type veth peer name dq$i netns $node_ns"
  done
} > "$work/ip.batch"
ip -batch "$work/ip.batch"
{
  echo "link set lo up"
  for i in $(seq 0 $((pods - 1))); do echo "addr add $(addr "$i" 1) dev dq$i"; echo "link set dq$i up"; done
} | ip -n "$node_ns" -batch -
# the node's own processes live in its netns too
( nsenter --net="/run/netns/$node_ns" sleep 100000 >/dev/null 2>&1 & )
for i in $(seq 0 $((pods - 1))); do
  ns=/run/netns/$pre-p$i
  printf 'link set lo up\naddr add %s dev eth0\nlink set eth0 up\n' "$(addr "$i" 2)" | ip -n "$pre-p$i" -batch -
  nsenter --net="$ns" iptables -A INPUT -m conntrack --ctstate INVALID -j DROP
  # the pod's sandbox: a process that lives in the netns (double fork: no job notices)
  ( nsenter --net="$ns" sleep 100000 >/dev/null 2>&1 & )
done
echo "quiet: $pods pod namespaces ready" >&2

if ((own)); then extra=(--netns "$(stat -L -c %i "/run/netns/$node_ns")" "${extra[@]}"); fi
ticks=$(getconf CLK_TCK)
# utime + stime, fields 14 and 15 (after the comm in parentheses)
cpu() { sed 's/.*) //' "/proc/$dt_pid/stat" | awk '{print $12 + $13}'; }
# per thread: "comm ticks" (where the process's CPU went: the JS thread, V8's and libuv's
# helpers, the ring-buffer poller); comm's spaces become _
threads() {
  cat /proc/"$dt_pid"/task/*/stat 2>/dev/null | awk '{
    o = index($0, "("); c = match($0, /\) [A-Z] /); comm = substr($0, o + 1, c - o - 1); gsub(/ /, "_", comm)
    split(substr($0, c + 2), f, " "); print comm, f[12] + f[13] }'
}

# one window of one tree; appends "tree cpu_pct hwm_kib rss_kib" to $work/results
measure() {
  local tree=$1 tag=$2 out=$work/out err=$work/stderr
  local pre_args=()
  [[ -n $profile ]] && pre_args=(--import "$PWD/dist/bench/inside.js")
  rm -f "$out" "$err"
  DT_CPU_PROF_DIR=$profile node "${pre_args[@]}" "$tree/dist/src/cli.js" stream "${extra[@]}" > "$out" 2> "$err" &
  dt_pid=$!
  for _ in $(seq 300); do grep -q '"type":"start"' "$out" 2>/dev/null && break; kill -0 "$dt_pid" 2>/dev/null || break; sleep 0.1; done
  grep -q '"type":"start"' "$out" || { echo "quiet: droptrace did not start: $(head -c 500 "$err")" >&2; exit 1; }
  [[ -n $profile ]] && kill -USR2 "$dt_pid"
  local c0 t0 c1 t1 hwm rss
  threads > "$work/threads0"
  c0=$(cpu) t0=$(date +%s%N)
  sleep "$duration"
  kill -0 "$dt_pid" 2>/dev/null || { echo "quiet: droptrace exited early: $(head -c 500 "$err")" >&2; exit 1; }
  c1=$(cpu) t1=$(date +%s%N)
  threads > "$work/threads1"
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$dt_pid/status")
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$dt_pid/status")
  kill -TERM "$dt_pid"
  wait "$dt_pid" || true
  if [[ -n $profile ]]; then
    for f in "$profile"/top-"$dt_pid".cpuprofile; do [[ -f $f ]] && mv "$f" "$profile/quiet-${tag// /-}.cpuprofile"; done
    tag="$tag, profile quiet-${tag// /-}.cpuprofile"
  fi
  dt_pid=

  awk -v c="$((c1 - c0))" -v hz="$ticks" -v ns="$((t1 - t0))" -v p="$pods" -v h="$hwm" -v r="$rss" -v tag="$tag" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
    s = c / hz; w = ns / 1e9
    printf "%spods %d, window %.1f s: cpu %.2f s = %.2f%% of a core; rss peak %d KiB, end %d KiB; load %s\n", tag == "" ? "" : "[" tag "] ", p, w, s, 100 * s / w, h, r, load
  }'
  awk -v c="$((c1 - c0))" -v hz="$ticks" -v ns="$((t1 - t0))" -v h="$hwm" -v r="$rss" -v t="$3" 'BEGIN { printf "%s %.4f %d %d\n", t, 100 * c / hz / (ns / 1e9), h, r }' >> "$work/results"
  # threads by name (a thread that ended in the window is missing: the sum can be below cpu)
  awk -v hz="$ticks" 'FNR == NR { b[$1] += $2; next } { a[$1] += $2 }
    END { printf "threads:"; for (k in a) if (a[k] - b[k] > 0) printf " %s %.2f s", k, (a[k] - b[k]) / hz; print "" }' "$work/threads0" "$work/threads1"
  local last
  last=$(grep '"type":"counters"' "$out" | tail -1 || true)
  if [[ -n $last ]]; then
    printf '%s\n' "$last" | node -e '
      const l = JSON.parse(require("fs").readFileSync(0, "utf8"));
      console.log(`counters: ${l.conntrack ? `netns_total ${l.conntrack.netns_total}` : "no conntrack"}, scan.netns ${l.scan.netns}, cost_ms ${l.cost_ms} (last sample)`);'
    echo "lines: $(grep -c '"type":"counters"' "$out") counters, $(grep -c '"type":"drop"' "$out" || true) drop, $(grep -c '"type":"stats"' "$out") stats"
  fi
  [[ -s $err ]] && echo "stderr: $(head -c 500 "$err")"
  return 0
}

: > "$work/results"
for r in $(seq "$rounds"); do
  for i in "${!trees[@]}"; do
    tag=
    ((${#trees[@]} > 1 || rounds > 1)) && tag="tree $((i + 1)) round $r"
    [[ -z $tag && -n $profile ]] && tag=run
    measure "${trees[$i]}" "$tag" "$i"
  done
done
if ((${#trees[@]} > 1 || rounds > 1)); then
  echo "summary ($rounds rounds of $duration s, means; ratio to tree 1):"
  for i in "${!trees[@]}"; do
    awk -v t="$i" -v dir="${trees[$i]}" '
      $1 == t { n++; c += $2; h += $3; r += $4; cs = cs sprintf("%s%.2f%%", n > 1 ? ", " : "", $2) }
      $1 == 0 { n0++; c0 += $2; h0 += $3 }
      END {
        printf "  tree %d %s: cpu %.2f%% of a core (%s), %.2f x tree 1; rss peak %.0f MB (%.2f x), end %.0f MB\n",
          t + 1, dir, c / n, cs, (c / n) / (c0 / n0), h / n / 1024, (h / n) / (h0 / n0), r / n / 1024
      }' "$work/results"
  done
fi
exit 0
