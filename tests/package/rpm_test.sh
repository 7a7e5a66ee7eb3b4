#!/usr/bin/env bash
# The RPM, built on Debian with Debian's rpmbuild from the build directory
# ctest runs in (already compiled: the spec's praefect_prebuilt_dir mode, so
# CI does not compile praefect a third time; `rpmbuild` without it compiles
# from the tree, see rpm/praefect.spec). Checks the files, the %config
# (noreplace) configuration, that `rpm -qp --scripts` shows the sysusers
# (%pre useradd) and systemd scriptlets (the sockets enabled on install and
# never stopped on upgrade, praefect restarted after one), and that Debian's
# rpmlint finds nothing beyond what rpm/rpmlint.toml filters, each filter
# with its reason. Installs nothing.
#
#   rpm_test.sh SOURCE_DIR BUILD_DIR
# Exit 77 (skipped) when rpmbuild or rpmlint is missing.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
command -v rpmbuild >/dev/null || { echo "SKIP: rpmbuild is missing (scripts/setup installs rpm)" >&2; exit 77; }
command -v rpmlint >/dev/null || { echo "SKIP: rpmlint is missing (scripts/setup installs it)" >&2; exit 77; }

start=$(date +%s)
tmp=$(mktemp -d /tmp/praefect-rpm-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# What the package takes from the build directory, in a staging copy so the
# build directory's own install manifest is left alone.
rpmbuild -bb --nodeps --load "$src/rpm/macros.debian" \
  --define "_topdir $tmp" --define "praefect_srcdir $src" --define "praefect_prebuilt_dir $build" \
  "$src/rpm/praefect.spec" >"$tmp/log" 2>&1 || { tail -40 "$tmp/log" >&2; fail "rpmbuild failed (log above)"; }
rpm=$(ls "$tmp"/RPMS/*/praefect-*.rpm)
echo "built $(basename "$rpm") in $(( $(date +%s) - start ))s"

files=$(rpm -qpl "$rpm")
echo "$files"
for f in /usr/sbin/praefect /usr/lib/systemd/system/praefect.service /usr/lib/systemd/system/praefect.socket \
  /usr/lib/systemd/system/praefect-tls.socket /usr/lib/systemd/system/praefect-metrics.socket \
  /usr/lib/systemd/system/praefect-maintenance.service /usr/lib/systemd/system/praefect-maintenance.timer \
  /usr/lib/sysusers.d/praefect.conf /etc/praefect/config.toml /usr/libexec/praefect/package-setup \
  /usr/share/bash-completion/completions/praefect /usr/share/praefect/praefect-dashboard.json \
  /usr/share/praefect/praefect-alerts.yml; do
  grep -qx "$f" <<<"$files" || fail "the package to contain $f"
done
grep -q '^/usr/share/man/man8/praefect.8' <<<"$files" || fail "the package to contain praefect(8)"
grep -q '^/usr/share/man/man5/praefect.toml.5' <<<"$files" || fail "the package to contain praefect.toml(5)"
grep -q '^/usr/share/man/man7/praefect-metrics.7' <<<"$files" || fail "the package to contain praefect-metrics(7)"
# (Here-strings, not pipes: grep -q would end rpm with SIGPIPE under pipefail.)
flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm")
grep -q '^/etc/praefect/config.toml cn$' <<<"$flags" || fail "config.toml to be %config(noreplace)"

scripts=$(rpm -qp --scripts "$rpm")
echo "$scripts"
grep -q 'useradd -r -g praefect -d /var/lib/praefect' <<<"$scripts" || fail "%pre to create the user praefect (sysusers)"
grep -q 'systemctl --no-reload enable praefect.socket praefect-tls.socket praefect-metrics.socket praefect-maintenance.timer' \
  <<<"$scripts" || fail "%post to enable the sockets and the timer (%systemd_post)"
grep -q 'disable --now praefect.service' <<<"$scripts" || fail "%preun to disable and stop the units (%systemd_preun)"
grep -q 'try-restart praefect.service' <<<"$scripts" || fail "%postun to restart praefect after an upgrade"
grep -q 'package-setup migrate' <<<"$scripts" || fail "%post to apply the migrations"
grep -q 'enable.*praefect-maintenance.service' <<<"$scripts" && fail "the oneshot service is never enabled"
# Only erasing the package ($1 = 0 in %preun) stops the sockets; an upgrade
# leaves them listening (connections wait in their queue while praefect
# restarts).
preun=$(sed -n '/^preuninstall scriptlet/,/^[a-z]* scriptlet/p' <<<"$scripts")
grep -q 'if \[ $1 -eq 0 \]' <<<"$preun" || fail "%preun to stop the units only on erase (\$1 = 0)"
grep -q '^PartOf=' "$src"/systemd/*.socket && fail "no PartOf= in the socket units (a restart would close them)"

# Debian's rpmlint: everything it reports must be fixed or filtered, with a
# reason, in rpm/rpmlint.toml.
lint=$(rpmlint -c "$src/rpm/rpmlint.toml" "$rpm" 2>&1) || true
echo "$lint"
grep -q '1 packages and 0 specfiles checked; 0 errors, 0 warnings' <<<"$lint" ||
  fail "rpmlint reports errors or warnings (above): fix them, or filter them in rpm/rpmlint.toml saying why"
grep -q 'rpm/rpmlint.toml' <<<"$lint" || fail "rpmlint to load rpm/rpmlint.toml"
echo "PASS in $(( $(date +%s) - start ))s"
