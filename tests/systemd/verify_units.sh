#!/usr/bin/env bash
# systemd-analyze verify on the units of systemd/, as systemd 252 checks
# them on a machine where the package is installed: every ExecStart= binary
# exists and every Documentation= man page resolves. The units are copied to
# a temporary directory with /usr/sbin/praefect replaced by the binary just
# built, and man(1) finds the pages just built through MANPATH. (With
# systemd 252, verify --root=DIR on a staged install tree fails with "Unit
# sysinit.target not found": it wants a whole OS tree, not one package.)
#
#   verify_units.sh SOURCE_DIR PRAEFECT_BINARY MAN_BUILD_DIR
# Passes when verify exits 0 and prints nothing on stderr.
set -euo pipefail
src=$1 binary=$2 man_dir=$3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/units" "$tmp/man/man5" "$tmp/man/man7" "$tmp/man/man8"
cp "$src"/systemd/*.service "$src"/systemd/*.socket "$src"/systemd/*.timer "$tmp/units/"
sed -i "s#/usr/sbin/praefect#$binary#g" "$tmp"/units/*.service
for page in "$man_dir"/*.[0-9]; do
  section=${page##*.}
  cp "$page" "$tmp/man/man$section/"
done

cd "$tmp/units"
rc=0
MANPATH="$tmp/man" systemd-analyze verify "$tmp"/units/* >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out"
if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ]; then
  echo "systemd-analyze verify: exit $rc, stderr:" >&2
  cat "$tmp/err" >&2
  echo "FAIL: fix the units in $src/systemd/ until verify is silent" >&2
  exit 1
fi
echo "systemd-analyze verify: $(ls "$tmp/units" | wc -l) units, no complaints"
