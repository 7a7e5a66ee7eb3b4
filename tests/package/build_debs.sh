#!/usr/bin/env bash
# The .debs the package tests install (ctest fixture "debs", built once for
# package/deb and package/nspawn):
#
#   OUT/v1/  dpkg-buildpackage -us -uc -b of a copy of the tree (tracked and
#            untracked files, not ignored ones): the version of
#            debian/changelog, and its .changes for lintian;
#   OUT/v2/  the same tree with one more migration (9999_package_test) and a
#            changelog entry VERSION+pkgtest1, built incrementally in the
#            same tree (-nc: ninja rebuilds what the migration changes):
#            the upgrade.
#
#   build_debs.sh SOURCE_DIR OUT_DIR
# Exit 77 (skipped) when a build tool is missing. Uses ccache when
# CCACHE_DIR is set (debian/rules).
set -euo pipefail

src=$(cd "$1" && pwd)
out=$2
start=$(date +%s)
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
for tool in dpkg-buildpackage dh dpkg-parsechangelog; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing (scripts/setup installs it)" >&2; exit 77; }
done

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d /tmp/praefect-debs-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
tree="$tmp/praefect"
mkdir -p "$tree"
# dpkg-buildpackage writes into the tree and its parent.
(cd "$src" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$tree" -xf -

# dpkg-buildpackage in $tree; the results are moved to $1. Extra arguments
# go to dpkg-buildpackage.
build() {
  local dest=$1
  shift
  mkdir -p "$dest"
  (cd "$tree" && env DEB_BUILD_OPTIONS="parallel=$(nproc) noddebs" dpkg-buildpackage -us -uc -b "$@" \
    >"$dest/build.log" 2>&1) || {
    tail -50 "$dest/build.log" >&2
    fail "dpkg-buildpackage $* failed (log above, whole log in $dest/build.log)"
  }
  mv "$tmp"/praefect_* "$dest/"
}

echo "building the .deb (dpkg-buildpackage -us -uc -b; CCACHE_DIR=${CCACHE_DIR:-unset})"
build "$out/v1"
deb1=$(ls "$out"/v1/praefect_*_*.deb)
echo "built $(basename "$deb1"), $(du -k "$deb1" | cut -f1) KiB, in $(( $(date +%s) - start ))s"

printf 'CREATE TABLE package_test_upgrade (id BIGINT PRIMARY KEY);\n' \
  >"$tree/sql/migrations/9999_package_test.up.sql"
printf 'DROP TABLE package_test_upgrade;\n' >"$tree/sql/migrations/9999_package_test.down.sql"
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
{
  printf 'praefect (%s+pkgtest1) unstable; urgency=medium\n\n  * Package test: one more migration.\n\n' "$version"
  printf ' -- Package test <root@localhost>  %s\n\n' "$(date -R)"
  cat "$src/debian/changelog"
} >"$tree/debian/changelog"
# dh skips the build when its stamp says it is done.
rm -f "$tree"/debian/debhelper-build-stamp "$tree"/debian/*.debhelper.log
build "$out/v2" -nc
deb2=$(ls "$out"/v2/praefect_*+pkgtest1_*.deb)
echo "built $(basename "$deb2") (one more migration, 9999_package_test); both in $(( $(date +%s) - start ))s"
