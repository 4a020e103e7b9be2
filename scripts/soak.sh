#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Soak test (not part of npm test): runs `droptrace stream` for a long time under a steady drop
# flood and network-namespace churn, and reports whether its memory (VmRSS) and open file
# descriptors stay stable.
#
# Everything happens in throw-away namespaces named dtsoak-*: veths exist only inside them,
# addresses are 198.18.0.0/15 (RFC 2544 benchmarking) only, no interface of the host is touched
# and no packet leaves the machine. Everything is removed on exit, also on Ctrl-C or failure.
#
#   flood:  dtsoak-<id>-a sends UDP at --pps to --ports ports of dtsoak-<id>-b, where an
#           iptables DROP rule drops them (netfilter_rule drops, one flow key per port)
#   churn:  every --churn seconds a new namespace pair with a process in it (a "pod") appears,
#           makes a few drops (UDP to a closed port: no_socket), and the previous one goes away
#
# RSS and fd count are sampled every --sample seconds. V8 lets the heap grow between major
# collections, so RSS is a sawtooth (measured: +1.6 MB/s, then back down every minute or so)
# and two single samples can differ by 20% without any leak. So the verdict compares floors: the
# lowest RSS of the first window after --warmup with the lowest of the last window (each window
# a fifth of the run, at least 3 samples). fds are compared the same way, floor to floor: the
# samplers' child processes (nsenter, ethtool) hold pipes while they run, so a single sample
# can catch a few of them in flight; a leaked fd raises the floor. Stable when the RSS floor
# grew by at most 10% (a lower floor is fine) and the fd floor is within 10%. The samples at
# ready and at the end are printed too. Exit 0 when stable and droptrace ended cleanly (exit 0,
# final stats line, nothing left attached), else 1.
#
# --own-drops passes --netns <the flood receiver's inode>: the kernel then filters out every
# drop of other floods on a shared machine (the soak's churn drops too: discovery and the
# samplers still see every namespace come and go).
#
# Usage: sudo scripts/soak.sh [--duration SECONDS] [--pps N] [--ports N] [--churn SECONDS]
#                             [--sample SECONDS] [--warmup SECONDS] [--own-drops]
#                             [-- DROPTRACE_STREAM_ARGS...]
#   default: 600 s, 20000 drops/s over 64 ports, churn every 5 s, sample every 10 s, warm-up 60 s
#            (shorter runs: warm-up is capped at a fifth of the duration)
# Needs: root, a built droptrace (./droptrace once, or npm run build), python3, iptables.
# Output: a table of samples, then a summary, e.g. (drops/s: every drop the machine made, as
# droptrace counted them; well over --pps means another flood on the machine was traced too)
#   t_s     rss_kib  fds  drops/s   note
#   0       152068   37   -         ready
#   60      177280   37   20012     first window
#   ...
#   rss floor: first window 177280 KiB, last window 181544 KiB (+2.4%); ...
#   verdict: stable (within 10%)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=600 pps=20000 ports=64 churn=5 sample=10 warmup= own=
extra=()
while (($#)); do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --pps) pps=$2; shift 2 ;;
    --ports) ports=$2; shift 2 ;;
    --churn) churn=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --own-drops) own=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '3,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in duration pps ports churn sample; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "soak: --$v wants a positive whole number, got ${!v}" >&2; exit 2; }
done
((ports <= 1000)) || { echo "soak: --ports at most 1000" >&2; exit 2; }
if [[ -z $warmup ]]; then warmup=$((duration / 5 < 60 ? duration / 5 : 60)); fi
[[ $(id -u) -eq 0 ]] || { echo "soak: needs root (BPF programs, network namespaces)" >&2; exit 1; }
[[ -f dist/src/cli.js && -f build/Release/droptrace.node ]] || { echo "soak: droptrace is not built (run ./droptrace once, or npm run build)" >&2; exit 1; }

id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
pre=dtsoak-$id
work=$(mktemp -d /tmp/dtsoak.XXXXXX)
flood_pid= dt_pid= shipper_pid= churn_pid=

cleanup() {
  set +e
  for p in $churn_pid $flood_pid; do kill "$p" 2>/dev/null; done
  [[ -n $dt_pid ]] && kill -TERM "$dt_pid" 2>/dev/null
  wait 2>/dev/null
  mapfile -t left < <(ip netns list | awk '{print $1}' | grep "^$pre-")
  ((${#left[@]})) && node dist/src/lab/pair-cli.js down "${left[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The namespace pair every test uses (src/lab/pair.ts): veth, 198.18.0.0/15 and fd99::/16
# addresses, permanent neighbours, optional DROP rules in b
pair() { node dist/src/lab/pair-cli.js up "$@" >/dev/null; }

pair --names "$pre-a" "$pre-b" --devs "dts${id}a" "dts${id}b" --subnet 254 --drop "udp:30000-$((30000 + ports - 1))"
[[ -n $own ]] && extra+=(--netns "$(stat -L -c %i "/run/netns/$pre-b")")

# droptrace writes to a reader that keeps the start and stats lines (a log shipper stand-in)
( node dist/src/cli.js stream --stats-interval 10 "${extra[@]}" 2>"$work/stderr" & echo $! > "$work/pid"; wait $!; echo $? > "$work/rc" ) |
  grep --line-buffered -E '^\{"type":"(start|stats)"' > "$work/lines" &
shipper_pid=$!
for _ in $(seq 100); do grep -q '"type":"start"' "$work/lines" 2>/dev/null && [[ -s $work/pid ]] && break; sleep 0.1; done
grep -q '"type":"start"' "$work/lines" || { echo "soak: droptrace did not start: $(cat "$work/stderr")" >&2; exit 1; }
dt_pid=$(cat "$work/pid")
prog_ids=$({ grep -h '^prog_id:' /proc/"$dt_pid"/fdinfo/* 2>/dev/null || true; } | awk '{print $2}' | sort -u | tr '\n' ' ')

ip netns exec "$pre-a" python3 -B src/lab/senders/udp_flood.py 198.18.254.2 "$pps" "$ports" &
flood_pid=$!

(
  n=0 prev=
  while :; do
    n=$((n + 1)); c=$((n % 250))
    a=$pre-c$n-a b=$pre-c$n-b
    pair --names "$a" "$b" --devs "dtc${id}${c}a" "dtc${id}${c}b" --net4 198.19 --subnet "$c" 2>/dev/null || true
    # a long-lived process in b stands for the pod's sandbox (double fork: no job notices)
    ( ip netns exec "$b" sleep 100000 >/dev/null 2>&1 & )
    for p in 9 10 11; do ip netns exec "$a" bash -c "echo soak > /dev/udp/198.19.$c.2/$p" 2>/dev/null || true; done
    [[ -n $prev ]] && node dist/src/lab/pair-cli.js down "$prev-a" "$prev-b"
    prev=$pre-c$n
    sleep "$churn"
  done
) &
churn_pid=$!

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$dt_pid/status"; }
fds() { ls "/proc/$dt_pid/fd" | wc -l; }
# droptrace sees every drop of the machine: on a shared machine other floods come on top of the
# soak's own. The drops/s column (kernel count between the last two stats lines) shows them.
kdrops() { grep '"type":"stats"' "$work/lines" | tail -1 | grep -o '"kernel":{"drops":[0-9]*' | grep -o '[0-9]*$' || echo 0; }
window=$((duration / 5)); ((window >= 3 * sample)) || window=$((3 * sample))
first_from=$warmup first_to=$((warmup + window)) last_from=$((duration - window))
((last_from >= first_to)) || { echo "soak: --duration too short for --warmup and two windows of 3 samples" >&2; exit 2; }
printf '%-7s %-8s %-4s %-9s %s\n' t_s rss_kib fds drops/s note
start=$SECONDS first_rss=$(rss) first_fds=$(fds) max_rss=0
floor1= floor2= fds1= fds2=
prev_drops=$(kdrops) prev_t=0
printf '%-7s %-8s %-4s %-9s %s\n' 0 "$first_rss" "$first_fds" - ready
next=$sample
while ((SECONDS - start < duration)); do
  sleep 1
  kill -0 "$dt_pid" 2>/dev/null || { echo "soak: droptrace exited early: $(cat "$work/stderr")" >&2; exit 1; }
  t=$((SECONDS - start))
  ((t >= next)) || continue
  next=$((next + sample))
  r=$(rss) f=$(fds) note= d=$(kdrops)
  rate=$(((d - prev_drops) / (t - prev_t))) prev_drops=$d prev_t=$t
  ((r > max_rss)) && max_rss=$r
  if ((t >= first_from && t <= first_to)); then
    note="first window"
    [[ -z $fds1 || $f -lt $fds1 ]] && fds1=$f
    [[ -z $floor1 || $r -lt $floor1 ]] && floor1=$r
  fi
  if ((t >= last_from)); then
    note="last window"
    [[ -z $floor2 || $r -lt $floor2 ]] && floor2=$r
    [[ -z $fds2 || $f -lt $fds2 ]] && fds2=$f
  fi
  printf '%-7s %-8s %-4s %-9s %s\n' "$t" "$r" "$f" "$rate" "$note"
done
end_rss=$(rss) end_fds=$(fds)

kill "$churn_pid" "$flood_pid" 2>/dev/null || true
churn_pid= flood_pid=
t0=$(date +%s%N)
kill -TERM "$dt_pid"
while kill -0 "$dt_pid" 2>/dev/null; do sleep 0.05; done
stop_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$shipper_pid" 2>/dev/null || true
dt_pid=
final=$(grep '"final":true' "$work/lines" | tail -1)
rc=$(cat "$work/rc" 2>/dev/null || echo '?')

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }'; }
within() { awk -v a="$1" -v b="$2" 'BEGIN { d = (b - a) / a; exit !(d <= 0.10 && d >= -0.10) }'; }
# memory that went down is not a leak: the first window may simply have caught no collection
grew_within() { awk -v a="$1" -v b="$2" 'BEGIN { exit !((b - a) / a <= 0.10) }'; }
# the kernel frees released programs a moment after the last reference: allow it 2 s
for _ in $(seq 20); do
  leftover=
  for p in $prog_ids; do bpftool prog show id "$p" >/dev/null 2>&1 && leftover+="$p "; done
  [[ -z $leftover ]] && break
  sleep 0.1
done

echo
echo "duration ${duration}s, flood ${pps} drops/s over ${ports} ports, churn every ${churn}s"
echo "rss floor: first window ${floor1} KiB, last window ${floor2} KiB ($(pct "$floor1" "$floor2")); at ready ${first_rss} KiB, at end ${end_rss} KiB, max ${max_rss} KiB"
echo "fd floor: first window ${fds1}, last window ${fds2} ($(pct "$fds1" "$fds2")); at ready ${first_fds}, at end ${end_fds}"
echo "stop: SIGTERM to exit ${stop_ms} ms, exit code ${rc}; programs left attached: ${leftover:-none}"
echo "final stats: ${final:-none}"
[[ -s $work/stderr ]] && echo "stderr: $(head -c 500 "$work/stderr")"
if grew_within "$floor1" "$floor2" && within "$fds1" "$fds2" && [[ -n $final && -z $leftover && $rc == 0 ]]; then
  echo "verdict: stable (RSS floor grew at most 10%, fd floor within 10%)"
else
  echo "verdict: NOT stable"
  exit 1
fi
