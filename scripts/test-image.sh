#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `npm run test:image`: builds deploy/Dockerfile with podman and runs the image as the DaemonSet
# would (scripts/podman-flags.mjs reads deploy/daemonset.yaml: host PID and network, uid 0 with its
# four capabilities only, the runtime's default seccomp profile, read-only root, no_new_privs, its
# memory limit, its hostPath mounts), then checks, each or it fails:
#   1. the container's process has exactly those capabilities, seccomp filter mode, no_new_privs
#   2. `droptrace check` passes in it
#   3. a drop in a kubelet-style pod (a netns under /run/netns, a process in it in a kubelet-style
#      cgroup, /var/log/pods/<namespace>_<name>_<uid>/ in a stand-in directory mounted where the
#      node's is) shows in the container's NDJSON attributed by pod name, and the liveness probe
#      answers 200
#   4. SIGTERM (podman stop) ends it with exit 0, no SIGKILL needed; the time is printed
#   5. none of the BPF programs and maps it held is left in the kernel
# Installs what is missing (podman, runc, debootstrap, iproute2, iptables, bpftool: Debian
# packages), makes the base image from Debian's mirror (scripts/image-base.sh, cached in
# /var/cache/droptrace-image), and removes its container, namespaces, cgroups and files on any exit.
# The built image stays (podman's layer cache makes the next run fast); --fresh removes it, the
# base and the cache first and builds without the layer cache. Network: namespaces of its own on 198.18.0.0/15; host network for the
# container, as on a node; nothing of the host's is changed.
# Usage: sudo scripts/test-image.sh [--fresh]
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=docker.io/library/debian:trixie-slim
CACHE=/var/cache/droptrace-image
IMAGE=localhost/droptrace:$(node -p 'require("./package.json").version')
t_start=$(date +%s.%N)
say() { printf 'test:image: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

if [[ $(id -u) -ne 0 ]]; then
  say "skipped: needs root (podman as root, network namespaces, BPF)"
  exit 77
fi

# command -> Debian package
need=(podman:podman runc:runc debootstrap:debootstrap ip:iproute2 iptables:iptables bpftool:bpftool curl:curl)
missing=()
for pair in "${need[@]}"; do
  PATH=$PATH:/usr/sbin:/sbin command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1; then
    say "skipped: cannot install ${missing[*]} from Debian's packages"
    exit 77
  fi
fi
export PATH=$PATH:/usr/sbin:/sbin
# the DaemonSet mounts the node's tracefs: classic tracepoints need its ids
[[ -e /sys/kernel/tracing/events ]] || mount -t tracefs tracefs /sys/kernel/tracing || fail "cannot mount tracefs on /sys/kernel/tracing"

# This machine's cgroups are mounted in hybrid mode, which crun refuses; runc works on both.
# Root here lacks CAP_SYS_RESOURCE: rlimits no higher than conmon's (podman's raised defaults
# fail with EPERM): our own open-files limit, and the 32768 processes of podman build's default.
podman=(podman --runtime "$(command -v runc)" --cgroup-manager cgroupfs)
ulimits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=32768:32768)

build_opts=()
if [[ ${1:-} == --fresh ]]; then
  "${podman[@]}" rmi -f "$IMAGE" "$BASE" >/dev/null 2>&1 || true
  rm -rf "$CACHE"
  build_opts=(--no-cache)
  say "fresh: removed $IMAGE, $BASE and $CACHE; building without podman's layer cache"
fi

# --- everything below is removed on exit ---------------------------------------------------------
id=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
name=dtimg-$id
pod_ns=dtimg-$id-pod
peer_ns=dtimg-$id-peer
tmp=$(mktemp -d /tmp/droptrace-image.XXXXXX)
cgroups=()
sleeper=
run_pid=
cleanup() {
  set +e
  "${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1
  [[ -n $run_pid ]] && kill "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null
  [[ -n $sleeper ]] && kill -9 "$sleeper" 2>/dev/null && wait "$sleeper" 2>/dev/null
  local i d
  for ((i = ${#cgroups[@]} - 1; i >= 0; i--)); do
    d=${cgroups[i]}
    for _ in {1..50}; do rmdir "$d" 2>/dev/null && break; [[ -d $d ]] || break; sleep 0.02; done
  done
  ip netns del "$pod_ns" 2>/dev/null
  ip netns del "$peer_ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- base and image ------------------------------------------------------------------------------
t=$(date +%s.%N)
bash scripts/image-base.sh "$CACHE"
say "base $BASE ready in $(since "$t") s"

t=$(date +%s.%N)
# npm's registry through a TLS-intercepting proxy: the CAs this machine's npm trusts, as a build
# secret (npm ci only, never in a layer)
secret=()
ca=$(npm config get cafile 2>/dev/null || true)
[[ -n ${NODE_EXTRA_CA_CERTS:-} ]] && ca=$NODE_EXTRA_CA_CERTS
[[ -n $ca && $ca != null && -s $ca ]] && secret=(--secret "id=npm-ca,src=$ca")
build_log=$tmp/build.log
if ! "${podman[@]}" build "${build_opts[@]}" --network host "${ulimits[@]}" "${secret[@]}" \
  --ignorefile deploy/Dockerfile.dockerignore -f deploy/Dockerfile -t "$IMAGE" . >"$build_log" 2>&1; then
  tail -25 "$build_log" >&2
  fail "podman build failed"
fi
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$IMAGE")
say "image $IMAGE built in $(since "$t") s: $((size / 1000000)) MB ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }') MiB)"

# --- the lab pod -----------------------------------------------------------------------------------
# a kubelet-style cgroup: systemd driver naming on cgroup v2 if mounted, else cgroupfs naming on v1
uid=$(cat /proc/sys/kernel/random/uuid)
cid=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
pod_namespace=shop
pod_name=web-$id-x2x9q
v2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
v1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)pids(,|$)/ { print $2; exit }' /proc/self/mounts)
if [[ -n $v2 ]]; then
  cg_parts=(kubepods.slice kubepods-besteffort.slice "kubepods-besteffort-pod${uid//-/_}.slice" "cri-containerd-$cid.scope")
  cg_root=$v2
elif [[ -n $v1 ]]; then
  cg_parts=(kubepods besteffort "pod$uid" "$cid")
  cg_root=$v1
else
  fail "no cgroup v2 mount and no v1 pids hierarchy to put the lab pod in"
fi
cg=$cg_root
for p in "${cg_parts[@]}"; do
  cg=$cg/$p
  [[ -d $cg ]] || { mkdir "$cg"; cgroups+=("$cg"); }
done

subnet=$((100 + RANDOM % 90))
pod_ip=198.18.$subnet.2
peer_ip=198.18.$subnet.1
port=$((47000 + RANDOM % 1000))
ip netns add "$peer_ns"
ip netns add "$pod_ns"
ip link add "dti$id" netns "$pod_ns" type veth peer name "dtj$id" netns "$peer_ns"
ip -n "$pod_ns" link set lo up
ip -n "$pod_ns" addr add "$pod_ip/24" dev "dti$id"
ip -n "$pod_ns" link set "dti$id" up
ip -n "$peer_ns" addr add "$peer_ip/24" dev "dtj$id"
ip -n "$peer_ns" link set "dtj$id" up
ip netns exec "$pod_ns" iptables -A INPUT -p udp --dport "$port" -j DROP
# the pod's "sandbox": ip netns exec enters the netns and execs sleep under the same pid
ip netns exec "$pod_ns" sleep 600 &
sleeper=$!
echo "$sleeper" >"$cg/cgroup.procs"
logs=$tmp/pods
mkdir -p "$logs/${pod_namespace}_${pod_name}_$uid/app"
: >"$logs/${pod_namespace}_${pod_name}_$uid/app/0.log"
say "lab pod $pod_namespace/$pod_name: netns $pod_ns ($pod_ip), pid $sleeper in $cg"

# --- the DaemonSet's settings as podman flags --------------------------------------------------------
mapfile -t flags < <(node scripts/podman-flags.mjs flags --host-path "/var/log/pods=$logs")
mapfile -t args < <(node scripts/podman-flags.mjs args)
read -r probe_path probe_port < <(node scripts/podman-flags.mjs probe)
((${#flags[@]})) || fail "no podman flags from deploy/daemonset.yaml"

# One file of a Debian 13 package, cached: a private sources list and apt state, so the host's apt
# configuration is never changed.
debian13_file() { # PACKAGE PATH_IN_PACKAGE DEST
  [[ -s $3 ]] && return 0
  local dir=$CACHE/apt-trixie work=$tmp/deb-$1
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$work"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(bash scripts/image-base.sh --mirror) trixie main" >"$dir/sources.list"
  local apt=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$dir/lists"
    -o "Dir::Cache::Archives=$dir/archives" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  { [[ -n $(ls "$dir/lists" 2>/dev/null | grep -v partial) ]] || apt-get -qq "${apt[@]}" update; } >/dev/null 2>&1 || return 1
  (cd "$work" && apt-get -qq "${apt[@]}" download "$1") >/dev/null 2>&1 || return 1
  dpkg-deb -x "$work/$1"_*.deb "$work/x" && cp "$work/x/$2" "$3.tmp" && mv "$3.tmp" "$3" || return 1
  basename "$work/$1"_*.deb >"$3.from"
}
allows_bpf() { # PROFILE: an ALLOW rule for bpf() with CAP_BPF
  node -e '
    const p = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    process.exit(p.syscalls.some((s) => s.names.includes("bpf") && s.action === "SCMP_ACT_ALLOW" && (s.includes?.caps ?? []).includes("CAP_BPF")) ? 0 : 1);
  ' "$1" 2>/dev/null
}
# RuntimeDefault is podman's default profile. Debian 12's (containers-common 0.50) allows bpf()
# only with CAP_SYS_ADMIN, so no probe loads under it: take Debian 13's (containers-common 0.62),
# which allows bpf() with CAP_BPF, from its package.
default_profile=/usr/share/containers/seccomp.json
if [[ " ${flags[*]} " != *" --security-opt=seccomp="* ]] && ! allows_bpf "$default_profile"; then
  profile=$CACHE/seccomp-containers-common-debian13.json
  debian13_file golang-github-containers-common usr/share/containers/seccomp.json "$profile" ||
    fail "podman's default seccomp profile here refuses bpf() with CAP_BPF, and Debian 13's could not be fetched"
  allows_bpf "$profile" || fail "$profile does not allow bpf() with CAP_BPF either"
  flags+=("--security-opt=seccomp=$profile")
  say "podman's default seccomp profile here (containers-common $(dpkg-query -W -f '${Version}' golang-github-containers-common 2>/dev/null)) allows bpf() only with CAP_SYS_ADMIN: using Debian 13's podman default ($(cat "$profile.from"))"
fi
printf 'test:image: podman run %s\n' "${flags[*]}" >&2

# --- 2. droptrace check ----------------------------------------------------------------------------
attached() { # EXTRA_FLAGS...: the hooks `droptrace check` attaches in the container
  "${podman[@]}" run --rm "${ulimits[@]}" "${flags[@]}" "$@" "$IMAGE" check --json >"$tmp/check.json" 2>"$tmp/check.err"
  local rc=$?
  node -e '
    const j = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    console.log(j.probes.filter((p) => p.state === "attached").map((p) => p.hook).sort().join(" "));
  ' "$tmp/check.json" 2>/dev/null || { cat "$tmp/check.err" >&2; return 1; }
  return $rc
}
hooks=$(attached) || fail "droptrace check failed in the container"
say "ok: droptrace check passes in the container; attached: $hooks"
# What the kernel and the four capabilities allow, without seccomp, and what the profiles cost.
# moby's default profile (Docker; containerd's follows it) is the RuntimeDefault of most nodes.
all=$(attached --security-opt seccomp=unconfined) || fail "droptrace check failed in the container without seccomp"
lost=$(comm -23 <(tr ' ' '\n' <<<"$all") <(tr ' ' '\n' <<<"$hooks") | tr '\n' ' ')
[[ -z $lost ]] || say "note: this seccomp profile refuses perf_event_open() without CAP_SYS_ADMIN; lost: $lost(attached unconfined: $all)"
moby=$CACHE/seccomp-moby-debian13.json
if debian13_file golang-github-docker-docker-dev usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json "$moby"; then
  m=$(attached --security-opt "seccomp=$moby") || fail "droptrace check failed in the container under moby's default profile"
  [[ $m == "$all" ]] || fail "under moby's default seccomp profile ($(cat "$moby.from")) attached: $m; without seccomp: $all"
  say "ok: under moby's default seccomp profile ($(cat "$moby.from")) every probe attaches as without seccomp: $m"
else
  say "note: moby's default seccomp profile could not be fetched from Debian 13 (golang-github-docker-docker-dev): not compared"
fi

# --- the DaemonSet's container ---------------------------------------------------------------------
out=$tmp/stream.ndjson
"${podman[@]}" run --name "$name" "${ulimits[@]}" "${flags[@]}" "$IMAGE" "${args[@]}" >"$out" 2>"$tmp/stream.err" &
run_pid=$!
for ((i = 0; ; i++)); do
  grep -q '"type":"start"' "$out" 2>/dev/null && break
  if ! kill -0 "$run_pid" 2>/dev/null; then
    cat "$tmp/stream.err" >&2
    fail "the container ended before its start line"
  fi
  ((i < 1200)) || fail "no start line after 120 s"
  sleep 0.1
done
cpid=$("${podman[@]}" inspect --format '{{.State.Pid}}' "$name")

# --- 1. what the kernel says about its process --------------------------------------------------
status=$(cat "/proc/$cpid/status")
capeff=$(awk '/^CapEff:/ { print $2 }' <<<"$status")
seccomp=$(awk '/^Seccomp:/ { print $2 }' <<<"$status")
nnp=$(awk '/^NoNewPrivs:/ { print $2 }' <<<"$status")
# CAP_SYS_PTRACE 19, CAP_SYSLOG 34, CAP_PERFMON 38, CAP_BPF 39
want=$(printf '%016x' $(((1 << 19) | (1 << 34) | (1 << 38) | (1 << 39))))
[[ $capeff == "$want" ]] || fail "container CapEff $capeff, want $want (BPF, PERFMON, SYSLOG, SYS_PTRACE)"
[[ $seccomp == 2 ]] || fail "container Seccomp mode $seccomp, want 2 (filter: the runtime's default profile)"
[[ $nnp == 1 ]] || fail "container NoNewPrivs $nnp, want 1"
"${podman[@]}" exec "$name" touch /opt/droptrace/x 2>/dev/null && fail "the root filesystem is writable"
say "ok: container pid $cpid: CapEff $capeff (exactly BPF, PERFMON, SYSLOG, SYS_PTRACE), seccomp filter, no_new_privs, read-only root"

# the programs it loaded: the prog_id of each BPF program fd it holds (/proc/PID/fdinfo)
mapfile -t progs < <(grep -h '^prog_id:' /proc/"$cpid"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -un)
((${#progs[@]})) || fail "the container's process $cpid holds no BPF program"
mapfile -t maps < <(grep -h '^map_id:' /proc/"$cpid"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -un)
prog_names=$(for p in "${progs[@]}"; do bpftool prog show id "$p" 2>/dev/null | sed -n 's/^[0-9]*: [a-z_]*  name \([^ ]*\).*/\1/p'; done | sort | tr '\n' ' ')

# --- 3. a drop in the lab pod, attributed by name --------------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$probe_port$probe_path" || true)
[[ $code == 200 ]] || fail "liveness probe $probe_path on port $probe_port answered $code, want 200"
say "ok: liveness probe $probe_path: 200"
match='
  const [dport, name, ns] = process.argv.slice(1);
  let hit = null;
  for (const l of require("node:fs").readFileSync(0, "utf8").split("\n")) {
    if (!l.includes(`"dport":${dport}`)) continue;
    const e = JSON.parse(l);
    if (e.type === "drop" && e.flow?.dport === Number(dport)) { hit = e; break; }
  }
  if (hit === null) process.exit(1);
  console.log(JSON.stringify({ kind: hit.kind, reason: hit.reason, pod: hit.pod, pod_match: hit.pod_match }));
  process.exit(hit.pod?.name === name && hit.pod?.namespace === ns ? 0 : 2);
'
for ((i = 0; ; i++)); do
  # bash's /dev/udp: one datagram from the peer to the pod, dropped by the pod's INPUT rule
  ip netns exec "$peer_ns" bash -c "echo droptrace >/dev/udp/$pod_ip/$port" 2>/dev/null || true
  set +e
  seen=$(node -e "$match" "$port" "$pod_name" "$pod_namespace" <"$out")
  rc=$?
  set -e
  ((rc == 0)) && break
  ((rc == 2)) && fail "the drop was not attributed to $pod_namespace/$pod_name: $seen"
  ((i < 150)) || fail "no drop line for udp port $port after 30 s"
  sleep 0.2
done
say "ok: drop in the lab pod's netns attributed by name: $seen"

# --- 4. SIGTERM --------------------------------------------------------------------------------------
t=$(date +%s.%N)
"${podman[@]}" stop -t 5 "$name" >/dev/null
stop_s=$(since "$t")
set +e
wait "$run_pid"
rc=$?
set -e
run_pid=
# from podman's record of when the process ended, without podman's own teardown
finished=$("${podman[@]}" inspect --format '{{.State.FinishedAt.UnixNano}}' "$name" 2>/dev/null || echo 0)
exit_s=$(awk -v a="$t" -v f="$finished" 'BEGIN { if (f > 0) printf "%.2f", f / 1e9 - a; else print "?" }')
((rc == 0)) || { tail -5 "$tmp/stream.err" >&2; fail "exit code $rc after SIGTERM, want 0 (137: it needed SIGKILL)"; }
tail -1 "$out" | grep -q '"type":"stats"' || fail "the last line after SIGTERM is not the final stats line"
say "ok: SIGTERM: exit 0, final stats line written; process ended $exit_s s after the signal (podman stop took $stop_s s)"

# --- 5. nothing left attached ------------------------------------------------------------------------
left=$(for p in "${progs[@]}"; do if bpftool prog show id "$p" >/dev/null 2>&1; then echo "$p"; fi; done | tr '\n' ' ')
[[ -z $left ]] || fail "BPF programs still loaded after exit: ids $left"
left=$(for m in "${maps[@]}"; do if bpftool map show id "$m" >/dev/null 2>&1; then echo "$m"; fi; done | tr '\n' ' ')
[[ -z $left ]] || fail "BPF maps still in the kernel after exit: ids $left"
say "ok: its ${#progs[@]} BPF programs ($prog_names) and ${#maps[@]} maps are gone"

"${podman[@]}" rm "$name" >/dev/null
say "PASS in $(since "$t_start") s; image $((size / 1000000)) MB"
