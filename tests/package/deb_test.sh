#!/usr/bin/env bash
# The Debian package end to end, on this machine (root required), with the
# .debs of build_debs.sh (ctest fixture "debs"):
#
#   1. the .deb holds the bash completion
#      (/usr/share/bash-completion/completions/praefect), the Grafana
#      dashboard and the Prometheus alerting rules (/usr/share/praefect);
#      lintian on the .changes of the build: no error and no warning but the
#      first-upload notice;
#   2. dpkg -i with the packaged config.toml (no [database]): postinst says
#      what to do and succeeds; the user praefect, the generated secrets file
#      (0640 root:praefect) and a configuration that validates without a
#      warning; dh_installsystemd's snippets come after the migration;
#   3. dpkg -r keeps /etc/praefect;
#   4. a throwaway PostgreSQL on a unix socket (peer authentication: only
#      the OS user praefect may log in as the role praefect); [database]
#      added to the kept config.toml; dpkg -i: postinst applies the 3
#      migrations as praefect (the tables belong to the role praefect);
#   5. dpkg -i of the same .deb again: 0 migrations applied;
#   6. the higher version build_debs.sh made (VERSION+pkgtest1: one extra
#      migration, 9999_package_test) upgrades it: exactly that migration is
#      applied;
#   7. a [database] that cannot be reached: postinst says what to run and
#      succeeds; PRAEFECT_AUTO_MIGRATE=no in /etc/default/praefect: no
#      migration run;
#   8. dpkg --purge removes /etc/praefect and /var/lib/praefect.
# Everything installed (package, user, database, files) is removed at the
# end, also on failure. Prints how long each step took.
#
#   deb_test.sh SOURCE_DIR DEBS_DIR
# Exit 77 (skipped) when not root or a tool is missing.
set -euo pipefail

src=$(cd "$1" && pwd)
debs=$2
PGBIN=${PRAEFECT_PG_BINDIR:-/usr/lib/postgresql/15/bin}
start=$(date +%s)
step_start=$start

step() {
  local now
  now=$(date +%s)
  printf '\n==== [%3ds, total %3ds] %s\n' "$((now - step_start))" "$((now - start))" "$*"
  step_start=$now
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the package test installs a package and a user: run it as root" >&2
  exit 77
fi
for tool in lintian setpriv psql "$PGBIN/initdb"; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing (scripts/setup installs it)" >&2; exit 77; }
done
if dpkg-query -W -f='${db:Status-Status}' praefect 2>/dev/null | grep -qv '^not-installed$'; then
  fail "a praefect package is already on this machine; this test would replace it: remove it first (dpkg --purge praefect)"
fi
user_existed=0
if getent passwd praefect >/dev/null; then
  user_existed=1
fi
[ -e /etc/praefect ] && fail "/etc/praefect exists; this test would overwrite it: move it away first"

tmp=$(mktemp -d /tmp/praefect-deb-test-XXXXXX)
chmod 0755 "$tmp"
pg_pid=""
cleanup() {
  local rc=$?
  set +e
  if dpkg-query -W -f='${db:Status-Status}' praefect 2>/dev/null | grep -qv '^not-installed$'; then
    dpkg --purge praefect >/dev/null 2>&1 || echo "cleanup: dpkg --purge praefect failed" >&2
  fi
  if [ "$user_existed" -eq 0 ]; then
    getent passwd praefect >/dev/null && userdel praefect
    getent group praefect >/dev/null && groupdel praefect
  fi
  rm -rf /etc/praefect /var/lib/praefect
  if [ -n "$pg_pid" ]; then
    kill -INT "$pg_pid" 2>/dev/null  # fast shutdown
    for _ in $(seq 300); do
      kill -0 "$pg_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pg_pid" 2>/dev/null
    wait "$pg_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
  echo "package test: $(( $(date +%s) - start ))s in all, exit $rc"
}
trap cleanup EXIT

deb1=$(ls "$debs"/v1/praefect_*_*.deb 2>/dev/null) || true
deb2=$(ls "$debs"/v2/praefect_*+pkgtest1_*.deb 2>/dev/null) || true
[ -n "$deb1" ] && [ -n "$deb2" ] || fail "no .debs in $debs/v1 and $debs/v2: run tests/package/build_debs.sh (ctest fixture debs)"
echo "packages: $(basename "$deb1"), $(basename "$deb2")"
contents=$(dpkg-deb -c "$deb1")
awk '{print $1, $2, $6}' <<<"$contents"
# The bash completion, where bash-completion loads it by the command's name.
grep -Eq '^-rw-r--r-- root/root .* \./usr/share/bash-completion/completions/praefect$' <<<"$contents" ||
  fail "the .deb to contain /usr/share/bash-completion/completions/praefect (0644 root:root)"
# The dashboard and the alerting rules (monitoring/README.md).
for f in praefect-dashboard.json praefect-alerts.yml; do
  grep -Eq "^-rw-r--r-- root/root .* \./usr/share/praefect/${f//./\\.}\$" <<<"$contents" ||
    fail "the .deb to contain /usr/share/praefect/$f (0644 root:root)"
done
grep -Eq '\./usr/share/man/man7/praefect-metrics\.7\.gz$' <<<"$contents" ||
  fail "the .deb to contain praefect-metrics(7)"

step "lintian"
lintian_out=$(lintian --info --display-info "$debs"/v1/praefect_*.changes 2>&1) || true
printf '%s\n' "$lintian_out"
bad=$(printf '%s\n' "$lintian_out" | grep -E '^[EW]: ' | grep -v ': initial-upload-closes-no-bugs' || true)
[ -z "$bad" ] || fail "lintian reports errors or warnings:
$bad"

step "dpkg -i (no [database] in the packaged config.toml)"
out=$(dpkg -i "$deb1" 2>&1) || { echo "$out"; fail "dpkg -i failed"; }
echo "$out"
grep -q "praefect: no \[database\] in /etc/praefect/config.toml, no migrations applied" <<<"$out" ||
  fail "postinst to say that no database is configured and what to run"
getent passwd praefect >/dev/null || fail "the user praefect to exist"
[ -f /usr/share/bash-completion/completions/praefect ] || fail "the bash completion to be installed"
[ "$(stat -c '%a %U %G' /etc/praefect/secrets)" = "640 root praefect" ] ||
  fail "/etc/praefect/secrets to be 0640 root:praefect, found $(stat -c '%a %U %G' /etc/praefect/secrets)"
grep -Eq '^token = [0-9a-f]{64}$' /etc/praefect/secrets || fail "generated tokens in /etc/praefect/secrets"
validate=$(cd / && setpriv --reuid=praefect --regid=praefect --init-groups -- \
  praefect -config /etc/praefect/config.toml configuration validate 2>&1) || {
  echo "$validate"
  fail "the packaged configuration to validate as praefect"
}
echo "$validate"
grep -q "warning" <<<"$validate" && fail "no warning on the packaged configuration and secrets file"
postinst=/var/lib/dpkg/info/praefect.postinst
migrate_line=$(grep -n 'package-setup migrate' "$postinst" | cut -d: -f1)
systemd_line=$(grep -n 'deb-systemd-helper\|deb-systemd-invoke' "$postinst" | head -1 | cut -d: -f1)
[ -n "$migrate_line" ] && [ -n "$systemd_line" ] && [ "$migrate_line" -lt "$systemd_line" ] ||
  fail "the migration (line $migrate_line of postinst) to come before dh_installsystemd's snippets (line $systemd_line)"
grep -q 'deb-systemd-invoke.*start.*praefect-maintenance.service' "$postinst" &&
  fail "postinst never starts praefect-maintenance.service"
echo "postinst: migration at line $migrate_line, first systemd snippet at line $systemd_line"
# An upgrade keeps the sockets listening and restarts a running praefect
# after the migrations (nspawn_test.sh shows it under systemd).
if [ -e /var/lib/dpkg/info/praefect.preinst ] && grep -q 'deb-systemd-invoke' /var/lib/dpkg/info/praefect.preinst; then
  fail "no preinst that stops units on upgrade (it left praefect stopped): $(cat /var/lib/dpkg/info/praefect.preinst)"
fi
grep -q "deb-systemd-invoke try-restart 'praefect.service'" "$postinst" ||
  fail "postinst to try-restart praefect.service on upgrade"
grep -E 'deb-systemd-invoke (try-)?restart' "$postinst" | grep -q '\.socket' &&
  fail "postinst never restarts a socket (praefect holds it; systemd would refuse)"

step "dpkg -r keeps /etc/praefect"
dpkg -r praefect >/dev/null
[ -f /etc/praefect/config.toml ] && [ -f /etc/praefect/secrets ] || fail "dpkg -r to keep config.toml and secrets"
[ -e /usr/sbin/praefect ] && fail "dpkg -r to remove /usr/sbin/praefect"
[ -e /usr/share/bash-completion/completions/praefect ] && fail "dpkg -r to remove the bash completion"

step "a throwaway PostgreSQL (unix socket, peer authentication for praefect)"
mkdir "$tmp/pg"
chown nobody:nogroup "$tmp/pg"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
as_nobody "$PGBIN/initdb" -D "$tmp/pg/data" -U postgres --auth-local=peer --auth-host=reject -E UTF8 --no-sync >/dev/null
printf 'local all postgres trust\nlocal all praefect peer\n' >"$tmp/pg/data/pg_hba.conf"
# Not through as_nobody: $! must be postgres itself (setpriv execs it).
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$PGBIN/postgres" -D "$tmp/pg/data" -k "$tmp/pg" \
  -c listen_addresses= -c fsync=off -c unix_socket_permissions=0777 >"$tmp/pg/log" 2>&1 &
pg_pid=$!
for _ in $(seq 300); do
  psql -h "$tmp/pg" -U postgres -Atc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
pg() { psql -h "$tmp/pg" -U postgres -d "${2:-postgres}" -v ON_ERROR_STOP=1 -Atc "$1"; }
pg 'SELECT 1' >/dev/null || { cat "$tmp/pg/log"; fail "PostgreSQL did not start"; }
pg "CREATE ROLE praefect LOGIN" >/dev/null
pg "CREATE DATABASE praefect_production OWNER praefect" >/dev/null
cat >>/etc/praefect/config.toml <<CONF

# Added by tests/package/deb_test.sh.
[database]
host = "$tmp/pg"
user = "praefect"
dbname = "praefect_production"
sslmode = "disable"
CONF

step "dpkg -i with [database]: postinst applies the migrations as praefect"
out=$(dpkg -i --force-confold "$deb1" 2>&1) || { echo "$out"; fail "dpkg -i failed"; }
echo "$out"
migrations=$(ls "$src"/sql/migrations/*.up.sql | wc -l)
grep -q "praefect sql-migrate: OK (applied $migrations migrations)" <<<"$out" ||
  fail "postinst to apply the $migrations migrations of sql/migrations"
[ "$(pg 'SELECT count(*) FROM schema_migrations' praefect_production)" = "$migrations" ] ||
  fail "$migrations rows in schema_migrations"
owner=$(pg "SELECT tableowner FROM pg_tables WHERE tablename = 'schema_migrations'" praefect_production)
[ "$owner" = praefect ] || fail "the migrations to run as praefect (peer authentication), schema_migrations belongs to $owner"
echo "schema_migrations: $(pg 'SELECT string_agg(id, $$, $$ ORDER BY id) FROM schema_migrations' praefect_production), owner $owner"

step "dpkg -i of the same .deb again: 0 migrations"
out=$(dpkg -i --force-confold "$deb1" 2>&1) || { echo "$out"; fail "reinstall failed"; }
echo "$out"
grep -q "praefect sql-migrate: OK (applied 0 migrations)" <<<"$out" || fail "the reinstall to apply 0 migrations"

step "upgrade to $(basename "$deb2"): only the new migration"
out=$(dpkg -i --force-confold "$deb2" 2>&1) || { echo "$out"; fail "the upgrade failed"; }
echo "$out"
grep -q "praefect sql-migrate: OK (applied 1 migrations)" <<<"$out" || fail "the upgrade to apply 1 migration"
grep -q "9999_package_test: applied" <<<"$out" || fail "the applied migration to be 9999_package_test"
grep -q "0001_initial_schema: migrating" <<<"$out" && fail "the old migrations not to be applied again"
[ "$(pg 'SELECT count(*) FROM schema_migrations' praefect_production)" = $((migrations + 1)) ] ||
  fail "$((migrations + 1)) rows in schema_migrations"

step "a database that cannot be reached: postinst says what to do and succeeds"
cp /etc/praefect/config.toml "$tmp/config.toml.good"
sed -i "s#^host = \"$tmp/pg\"#host = \"$tmp/no-such-dir\"#" /etc/praefect/config.toml
grep -q "no-such-dir" /etc/praefect/config.toml || fail "the test to point [database] elsewhere"
out=$(dpkg -i --force-confold "$deb2" 2>&1) || { echo "$out"; fail "dpkg -i with an unreachable database failed"; }
echo "$out"
grep -q "the database in /etc/praefect/config.toml cannot be reached, no migrations applied. Once it answers, run: " \
  <<<"$out" || fail "postinst to say that the database cannot be reached and what to run"
cp "$tmp/config.toml.good" /etc/praefect/config.toml

step "PRAEFECT_AUTO_MIGRATE=no"
sed -i 's/^PRAEFECT_AUTO_MIGRATE=.*/PRAEFECT_AUTO_MIGRATE=no/' /etc/default/praefect
out=$(dpkg -i --force-confold "$deb2" 2>&1) || { echo "$out"; fail "dpkg -i with PRAEFECT_AUTO_MIGRATE=no failed"; }
echo "$out"
grep -q "automatic migration is off" <<<"$out" || fail "postinst to say that automatic migration is off"
grep -q "sql-migrate: OK" <<<"$out" && fail "no migration with PRAEFECT_AUTO_MIGRATE=no"

step "dpkg --purge removes /etc/praefect"
dpkg --purge praefect >/dev/null
[ -e /etc/praefect ] && fail "purge to remove /etc/praefect (left: $(ls -A /etc/praefect))"
[ -e /var/lib/praefect ] && fail "purge to remove /var/lib/praefect"
step "PASS"
