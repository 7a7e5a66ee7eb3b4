#!/usr/bin/env bash
# The Debian 12 root that tests/package/nspawn_test.sh boots, as a cached
# tarball: debootstrap (minbase, with systemd as init) from the mirror apt on
# this machine uses, then PostgreSQL, git, Python grpcio, iproute2 and the
# shared libraries of praefect's .deb and of the test's storage node and git
# remote helper, installed with apt but nothing of praefect itself (the test
# installs the .deb under the booted systemd, as an operator would).
#
#   make_root.sh CACHE_DIR DEB BINARY...
# Prints the path of the tarball. The tarball's name carries a hash of what
# goes into it (the recipe below, the apt sources, the package list), so a
# change to any of them builds a new one; the two newest tarballs in
# CACHE_DIR are kept, older ones removed. Building one needs the network (the Debian mirror); using a
# cached one does not.
set -euo pipefail

cache=$1 deb=$2
shift 2
binaries=("$@")
# Bump when the recipe changes in a way the package list does not show.
recipe=3
suite=bookworm

# The mirror of this machine's apt sources (deb822 or one-line format), the
# first for $suite; PRAEFECT_NSPAWN_MIRROR overrides it.
sources=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null || true)
mirror=${PRAEFECT_NSPAWN_MIRROR:-$(
  printf '%s\n' "$sources" | awk -v suite="$suite" '
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri != "" && !found) { print uri; found = 1 } }
    /^deb / && !found { for (i = 2; i <= NF; i++) if ($i == suite) { print $(i - 1); found = 1 } }
  ' | head -1
)}
[ -n "$mirror" ] || {
  echo "make_root.sh: no apt source for $suite in /etc/apt; set PRAEFECT_NSPAWN_MIRROR to a Debian mirror URL" >&2
  exit 1
}

# What the test needs besides praefect's own libraries.
packages=(postgresql git python3-grpcio python3-protobuf iproute2 procps)
# The libraries of the .deb (its Depends, first alternative, without versions)
# and of the test binaries (dpkg-shlibdeps, as a package build would find them).
mapfile -t -O "${#packages[@]}" packages < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep .)
shl=$(mktemp -d)
mkdir "$shl/debian"
printf 'Source: pkgtest\n\nPackage: pkgtest\nArchitecture: any\n' >"$shl/debian/control"
deps=$(cd "$shl" && dpkg-shlibdeps -O "${binaries[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shl"
[ -n "$deps" ] || { echo "make_root.sh: dpkg-shlibdeps found no libraries for ${binaries[*]}" >&2; exit 1; }
mapfile -t -O "${#packages[@]}" packages < <(printf '%s\n' "$deps" | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep .)
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)

key=$(printf '%s\n' "recipe $recipe" "$suite" "$mirror" "$sources" "${packages[@]}" | sha256sum | cut -c1-16)
tarball="$cache/debian-$suite-$key.tar.zst"
if [ -f "$tarball" ]; then
  echo "$tarball"
  exit 0
fi

mkdir -p "$cache"
start=$(date +%s)
work=$(mktemp -d /var/tmp/praefect-root-XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
echo "make_root.sh: building $tarball from $mirror (packages: ${packages[*]})" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus "$suite" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log" >&2
  echo "make_root.sh: debootstrap from $mirror failed (log above)" >&2
  exit 1
}
echo "make_root.sh: debootstrap took $(( $(date +%s) - start ))s" >&2
# The same apt sources as this machine (updates and security included), so
# the libraries are the versions praefect was built against or newer.
rm -f "$root/etc/apt/sources.list"
cp /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$root/etc/apt/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/sources.list"
# No service starts while the root is built (there is no systemd running).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
# systemd-nspawn without --boot runs apt with /proc, /dev, /dev/shm and the
# host's resolv.conf set up (PostgreSQL's postinst runs initdb, which needs
# them); --register=no and --keep-unit because this machine's PID 1 is not
# systemd (see nspawn_test.sh).
nspawn_run() {
  systemd-nspawn --quiet --register=no --keep-unit --resolv-conf=copy-host -D "$root" -E DEBIAN_FRONTEND=noninteractive \
    -- "$@"
}
nspawn_run apt-get update -qq >"$work/apt.log" 2>&1 &&
  nspawn_run apt-get install -y -qq --no-install-recommends "${packages[@]}" >>"$work/apt.log" 2>&1 || {
  tail -30 "$work/apt.log" >&2
  echo "make_root.sh: apt-get install in the root failed (log above)" >&2
  exit 1
}
nspawn_run apt-get clean
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
rm -rf "$root"/var/lib/apt/lists/*
# Each boot gets a machine id of its own from systemd-nspawn.
: >"$root/etc/machine-id"
echo pkgtest >"$root/etc/hostname"
tar --zstd --numeric-owner --xattrs -C "$root" -cf "$work/root.tar.zst" .
mv "$work/root.tar.zst" "$tarball"
# The two newest stay (two branches with different libraries do not rebuild
# each other's); older ones are removed.
ls -t "$cache"/debian-"$suite"-*.tar.zst | tail -n +3 | xargs -r rm -f
echo "make_root.sh: built in $(( $(date +%s) - start ))s, $(du -m "$tarball" | cut -f1) MiB" >&2
echo "$tarball"
