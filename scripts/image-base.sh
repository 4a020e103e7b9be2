#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Makes the Dockerfile's base, docker.io/library/debian:trixie-slim, from Debian packages alone,
# for a machine that reaches Debian's mirror but no container registry: debootstrap (minbase)
# of trixie, trimmed like the official slim image (no docs, man pages or locales, no apt lists),
# then `podman import` under that tag. The tarball is cached, so a second run only imports it,
# and nothing is done when podman already has the tag.
# Usage: scripts/image-base.sh [CACHE_DIR]   (root; default /var/cache/droptrace-image)
#        scripts/image-base.sh --mirror      prints the Debian mirror it uses (the host's own)
set -euo pipefail

BASE=docker.io/library/debian:trixie-slim
say() { printf 'image-base: %s\n' "$*" >&2; }

# the host's own Debian mirror (deb822 sources first, then the one-line format)
mirror=$(sed -n 's|^URIs: *\(https\?://[^ ]*/debian\)/*$|\1|p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[[ -n $mirror ]] || mirror=$(sed -n 's|^deb *\(\[[^]]*\] *\)\?\(https\?://[^ ]*/debian\)/* .*|\2|p' /etc/apt/sources.list 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
if [[ ${1:-} == --mirror ]]; then
  echo "$mirror"
  exit 0
fi

cache=${1:-/var/cache/droptrace-image}
tar=$cache/debian-trixie-minbase.tar
podman image exists "$BASE" && exit 0

if [[ ! -s $tar ]]; then
  mkdir -p "$cache"
  dir=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$dir" "$tar.tmp"' EXIT
  say "debootstrap --variant=minbase trixie from $mirror"
  log=$cache/debootstrap.log
  if ! debootstrap --variant=minbase trixie "$dir" "$mirror" >"$log" 2>&1; then
    tail -5 "$log" >&2
    say "debootstrap failed (log: $log)"
    exit 1
  fi
  # what the official slim image does: dpkg leaves docs, man pages and locales out; apt keeps no
  # package lists or downloaded packages; the sources are trixie, its updates and security
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  find "$dir/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$dir"/usr/share/{man,info,groff,lintian,linda}/* "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* \
    "$dir"/var/cache/debconf/*-old "$dir"/var/log/* "$dir"/tmp/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  tar --numeric-owner --xattrs -C "$dir" -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
fi
say "podman import $tar as $BASE"
podman import -q --change 'CMD ["bash"]' "$tar" "$BASE" >/dev/null
