#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetches Debian kernels for the qemu guests of the kernel matrix into a cache directory, without
# touching the host's apt configuration or /lib/modules, and prints the path of each kernel image
# (DIR/VERSION/boot/vmlinuz-VERSION), one a line. A kernel already in the cache is not fetched
# again; nothing else is printed unless something is downloaded or fails.
#
#   kernels/fetch.sh [--cache DIR] [--update] VERSION|ALIAS|--matrix ...
#
#   VERSION     a Debian kernel release, e.g. 5.10.0-32-amd64 (package linux-image-VERSION-unsigned)
#   ALIAS       5.10, 6.1 or 6.12: the newest amd64 kernel of that series in the package lists
#               (bullseye, bookworm, trixie)
#   --matrix    the guests of the matrix: 5.10.0-32-amd64, 6.1 and 6.12
#   --cache DIR the cache (default $DROPTRACE_KERNEL_CACHE or /var/cache/droptrace/kernels)
#   --update    refresh the package lists first (else only when missing or the sources changed)
#
# Layout, which kernels/run-in-vm.sh reads: DIR/VERSION/boot/vmlinuz-VERSION and
# DIR/VERSION/lib/modules/VERSION (depmod run; for merged-usr packages lib -> usr/lib). apt's
# private state: DIR/apt/{etc/sources.list,lists,cache}. Needs root for apt and a fetch.
# Exit status: 0 all printed; 1 a kernel could not be fetched (one line on stderr saying why);
# 2 bad usage.
set -euo pipefail

say() { printf 'fetch: %s\n' "$*" >&2; }
cache=${DROPTRACE_KERNEL_CACHE:-/var/cache/droptrace/kernels} update=0 wanted=()
while (($#)); do
  case $1 in
    --cache) cache=${2:?--cache wants a directory}; shift 2 ;;
    --update) update=1; shift ;;
    --matrix) wanted+=(5.10.0-32-amd64 6.1 6.12); shift ;;
    -h|--help) awk 'NR > 2 && !/^#/ { exit } NR > 2' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) say "unknown option $1 (see --help)"; exit 2 ;;
    *) wanted+=("$1"); shift ;;
  esac
done
((${#wanted[@]})) || { say "no kernel named: kernels/fetch.sh VERSION|ALIAS|--matrix (see --help)"; exit 2; }

# Only the series of the matrix: an alias is a package-name pattern of its Debian suite.
pattern_of() {
  case $1 in
    5.10) echo '^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$' ;;
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+deb13-amd64-unsigned$' ;;
    *) return 1 ;;
  esac
}
have() { [[ -r $cache/$1/boot/vmlinuz-$1 && -s $cache/$1/lib/modules/$1/modules.dep ]]; }

apt_dir=$cache/apt
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list" -o Dir::Etc::sourceparts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
sources='deb http://deb.debian.org/debian bullseye main
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian trixie main'
lists_ready=0
# The private package lists: written and refreshed only when needed (a cached kernel needs none).
prepare_apt() {
  ((lists_ready)) && return 0
  [[ $(id -u) -eq 0 ]] || { say "needs root to fetch a kernel (apt-get, depmod)"; exit 1; }
  mkdir -p "$apt_dir/etc" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  if [[ ! -f $apt_dir/etc/sources.list || $(<"$apt_dir/etc/sources.list") != "$sources" ]]; then
    printf '%s\n' "$sources" >"$apt_dir/etc/sources.list"
    update=1
  fi
  compgen -G "$apt_dir/lists/*_Packages*" >/dev/null || update=1
  if ((update)); then
    say "updating the package lists in $apt_dir"
    local err
    err=$(apt-get -qq "${apt_opts[@]}" update 2>&1 >/dev/null) || { say "apt-get update failed: $(tail -n 1 <<<"$err")"; exit 1; }
  fi
  lists_ready=1
}

# sets $ver: the version an argument names
resolve() {
  local pat newest
  ver=$1
  pat=$(pattern_of "$1") || return 0
  # a cached kernel of the series is used as it is unless the lists are refreshed
  if ((!update)); then
    newest=$(ls -1 "$cache" 2>/dev/null | sed 's/$/-unsigned/; s/^/linux-image-/' | grep -E "$pat" | sort -V | tail -n 1 || true)
    if [[ -n $newest ]]; then newest=${newest#linux-image-}; newest=${newest%-unsigned}; have "$newest" && { ver=$newest; return; }; fi
  fi
  prepare_apt
  newest=$(apt-cache "${apt_opts[@]}" pkgnames linux-image- 2>/dev/null | grep -E "$pat" | sort -V | tail -n 1 || true)
  [[ -n $newest ]] || { say "no kernel of the $1 series in the package lists ($apt_dir/etc/sources.list)"; exit 1; }
  newest=${newest#linux-image-}
  ver=${newest%-unsigned}
}

fetch() {
  local v=$1 pkg deb tmp
  pkg=linux-image-$v-unsigned
  prepare_apt
  exec 9>"$cache/.lock"
  flock 9 # two runs fetching at once: the second finds the first one's result
  have "$v" && return 0
  say "downloading $pkg"
  deb=$(ls -1 "$apt_dir/cache/${pkg}_"*.deb 2>/dev/null | tail -n 1 || true)
  if [[ -z $deb ]]; then
    local err
    err=$(cd "$apt_dir/cache" && apt-get -qq "${apt_opts[@]}" -o APT::Sandbox::User=root download "$pkg" 2>&1 >/dev/null) \
      || { say "apt-get download $pkg failed: $(tail -n 1 <<<"$err")"; exit 1; }
    deb=$(ls -1 "$apt_dir/cache/${pkg}_"*.deb | tail -n 1)
  fi
  tmp=$(mktemp -d "$cache/.$v.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  dpkg-deb -x "$deb" "$tmp" || { say "dpkg-deb -x $deb failed"; exit 1; }
  # merged-usr packages (trixie) ship usr/lib/modules only
  [[ ! -e $tmp/lib && -d $tmp/usr/lib/modules ]] && ln -s usr/lib "$tmp/lib"
  depmod -b "$tmp" "$v" || { say "depmod for $v failed"; exit 1; }
  rm -rf "${cache:?}/$v"
  mv "$tmp" "$cache/$v"
  trap - EXIT
}

mkdir -p "$cache"
for w in "${wanted[@]}"; do
  resolve "$w"
  v=$ver
  [[ $v =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { say "not a kernel version: $v"; exit 2; }
  have "$v" || fetch "$v"
  echo "$cache/$v/boot/vmlinuz-$v"
done
