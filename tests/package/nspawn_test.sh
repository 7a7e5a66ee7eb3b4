#!/usr/bin/env bash
# The Debian package under a real systemd, as an operator runs it: a Debian
# 12 root (tests/package/nspawn/make_root.sh: debootstrap from this machine's
# apt mirror, PostgreSQL and the libraries preinstalled, cached as a tarball
# under $PRAEFECT_TEST_CACHE, default /var/cache/praefect-tests) is booted
# with `systemd-nspawn --boot --private-network`, and inside it:
#
#    1. dpkg -i of the .deb with its packaged config.toml: sockets and timer
#       enabled and listening on loopback only, praefect.service not started,
#       nothing listening on another address;
#    2. three storage nodes (the build's praefect-storage-node), PostgreSQL's
#       role and database, a config.toml for them with [database], the client
#       token as a credential in /etc/credstore; dpkg -i again: postinst
#       applies every migration as praefect; praefect still not started;
#    3. the first call starts praefect (socket activation); Type=notify,
#       STATUS= with 3/3 healthy nodes; systemd-analyze security's exposure
#       level is the one praefect(8) gives;
#    4. systemctl reload: a log level change applied (same pid); an invalid
#       file refused by reload with the reason in systemctl status and the
#       journal, and by praefect itself on a bare SIGHUP, the old
#       configuration still serving;
#    5. systemctl restart under a client loop: zero failed calls; stop keeps
#       the sockets listening;
#    6. the watchdog restarts a SIGSTOPped praefect;
#    7. dpkg -i of a newer version (+pkgtest1, one more migration) under a
#       client loop: zero failed calls (idem), the migration applied,
#       praefect running the new binary, the socket never closed;
#    8. praefect-maintenance.timer listed; its service runs the maintenance
#       pass and succeeds (summary OK in the journal); with a mismatch it
#       cannot get repaired (praefect stopped; a drop-in's short -wait) it
#       fails with exit status 2, listed by systemctl --failed, the summary
#       in systemctl status; once praefect runs the repair, it succeeds;
#    9. /metrics (loopback) shows no repository path and no node address;
#       the access log entries' fields in journalctl -o json;
#   10. dpkg --purge: units gone, nothing listening, /etc/praefect and
#       /var/lib/praefect removed.
# Prints how long each step took and the figures (calls, failures).
#
#   nspawn_test.sh SOURCE_DIR BUILD_DIR DEBS_DIR
# DEBS_DIR is what build_debs.sh made (v1/ and v2/). Exit 77 (skipped) when
# not root or a tool is missing. PRAEFECT_NSPAWN_KEEP=1 leaves the container
# running after a failure and prints how to enter it; PRAEFECT_NSPAWN_RESTARTS=N
# adds N restarts under the client loop.
#
# What booting needs on this kind of machine (a VM whose PID 1 is not
# systemd, cgroup v1 with a named systemd hierarchy and cgroup2 at
# /sys/fs/cgroup/unified):
#   --register=no   there is no systemd-machined to register with (and no
#                   system bus: nspawn fails with "Failed to open system bus");
#   --keep-unit     nor a systemd to create a scope unit for the container;
#   nsenter         instead of machinectl shell or systemd-run -M, which need
#                   machined; entering all namespaces of the container's PID 1
#                   runs a command as if in the container (systemctl talks
#                   to its systemd over /run/systemd/private);
#   the cgroup layout systemd-nspawn picks by itself (hybrid here) works;
#   SYSTEMD_NSPAWN_UNIFIED_HIERARCHY is not needed.
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
debs=$3
cache=${PRAEFECT_TEST_CACHE:-/var/cache/praefect-tests}
start=$(date +%s)
step_start=$start

# Calls that fail while praefect stops fail the test ("enforce"). With "todo"
# calls CANCELLED while praefect was stopping would be reported and tolerated,
# any other failure failing the test: grpc++'s server (gone since the data
# plane is src/http2) cancelled calls that arrived after its shutdown began.
CANCELLED_ON_STOP_CHECK=enforce

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
  echo "SKIP: booting a container needs root" >&2
  exit 77
fi
for tool in debootstrap systemd-nspawn nsenter zstd dpkg-shlibdeps protoc /usr/bin/grpc_python_plugin; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing (scripts/setup installs it)" >&2; exit 77; }
done
deb1=$(ls "$debs"/v1/praefect_*_*.deb 2>/dev/null) || true
deb2=$(ls "$debs"/v2/praefect_*+pkgtest1_*.deb 2>/dev/null) || true
[ -n "$deb1" ] && [ -n "$deb2" ] || fail "no .debs in $debs/v1 and $debs/v2: run tests/package/build_debs.sh (ctest fixture debs)"
for bin in praefect-storage-node praefect-storage-node-hook git-remote-gitaly; do
  [ -x "$build/bin/$bin" ] || fail "$build/bin/$bin is missing: build $build first"
done

step "the Debian 12 root (cache: $cache)"
tarball=$("$src/tests/package/nspawn/make_root.sh" "$cache" "$deb1" "$build/bin/praefect-storage-node" \
  "$build/bin/praefect-storage-node-hook" "$build/bin/git-remote-gitaly")
echo "root: $tarball"

work=$(mktemp -d /var/tmp/praefect-nspawn-XXXXXX)
root="$work/root"
machine="praefect-pkgtest-$$"
nspawn_pid=""
leader=""
root_on_tmpfs=0
cleanup() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ] && [ "${PRAEFECT_NSPAWN_KEEP:-}" = 1 ] && [ -n "$leader" ]; then
    echo "PRAEFECT_NSPAWN_KEEP=1: the container stays up for a look inside:"
    echo "  nsenter --target $leader --all --root --wd -- bash"
    echo "  then: kill $nspawn_pid; $([ "$root_on_tmpfs" = 1 ] && echo "umount $root; ")rm -rf $work"
    return
  fi
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    local stop_start
    stop_start=$(date +%s)
    [ -n "$leader" ] && ct systemctl poweroff --no-block >/dev/null 2>&1
    for _ in $(seq 600); do
      kill -0 "$nspawn_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$nspawn_pid" 2>/dev/null
    wait "$nspawn_pid" 2>/dev/null
    echo "container powered off in $(( $(date +%s) - stop_start ))s"
  fi
  if [ "$rc" -ne 0 ] && [ -f "$work/boot.log" ]; then
    echo "---- last lines of the container's console ($work/boot.log)" >&2
    tail -20 "$work/boot.log" >&2
  fi
  local rm_start
  rm_start=$(date +%s)
  [ "$root_on_tmpfs" = 1 ] && umount "$root"
  rm -rf "$work"
  echo "removed the container's root in $(( $(date +%s) - rm_start ))s"
  echo "nspawn test: $(( $(date +%s) - start ))s in all, exit $rc"
}
trap cleanup EXIT

mkdir "$root"
# On a tmpfs when memory allows: removing the root from the disk after the
# test took 50 s here (writeback of what PostgreSQL and the journal wrote),
# unmounting a tmpfs takes none.
available_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
if [ "${available_kib:-0}" -ge $((4 * 1024 * 1024)) ]; then
  mount -t tmpfs -o size=3g,mode=0755 praefect-pkgtest "$root"
  root_on_tmpfs=1
  echo "root on a tmpfs ($((available_kib / 1024)) MiB available)"
fi
tar --zstd --numeric-owner --xattrs -C "$root" -xf "$tarball"

# What the test brings in: the debs, the storage node and the git helper
# (beside each other: the node finds the helper there), the client and its
# stubs generated from the packaged Gitaly protos.
mkdir -p "$root/opt/pkgtest/bin" "$root/opt/pkgtest/stubs"
cp "$deb1" "$deb2" "$root/opt/pkgtest/"
cp "$build/bin/praefect-storage-node" "$build/bin/praefect-storage-node-hook" "$build/bin/git-remote-gitaly" \
  "$root/opt/pkgtest/bin/"
cp "$src/tests/package/nspawn/client.py" "$root/opt/pkgtest/"
proto_dir=$(sed -n 's/^GITALY_PROTO_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -d "$proto_dir" ] || fail "GITALY_PROTO_DIR ($proto_dir) from $build/CMakeCache.txt is not a directory"
(cd "$proto_dir" && protoc --proto_path=. --proto_path=/usr/include --python_out="$root/opt/pkgtest/stubs" \
  --grpc_out="$root/opt/pkgtest/stubs" --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin ./*.proto)
# Storage nodes as units of the container's systemd.
for i in 1 2 3; do
  mkdir -p "$root/srv/gitaly-$i"
done
cat >"$root/etc/systemd/system/pkgtest-gitaly@.service" <<'UNIT'
[Unit]
Description=praefect's test storage node %i
[Service]
ExecStart=/opt/pkgtest/bin/praefect-storage-node -config /srv/%i.toml
UNIT

step "boot it: systemd-nspawn --boot --private-network"
# --console=read-only: the boot messages go to boot.log, nothing is read
# from the terminal (there is none under ctest).
systemd-nspawn --quiet --register=no --keep-unit --private-network --boot --console=read-only \
  --machine="$machine" -D "$root" >"$work/boot.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 300); do
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/boot.log" >&2; nspawn_pid=""; fail "systemd-nspawn exited"; }
  leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || fail "no systemd under systemd-nspawn (pid $nspawn_pid) after 30 s"

# A command inside the container, with a clean environment.
ct() {
  nsenter --target "$leader" --all --root --wd -- \
    env -i PATH=/opt/pkgtest/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}
# systemctl needs the manager's private socket, which appears a moment after
# PID 1 starts.
for _ in $(seq 300); do
  ct test -S /run/systemd/private && break
  sleep 0.1
done
state=$(ct timeout 120 systemctl is-system-running --wait 2>&1) || true
if [ "$state" != running ]; then
  ct systemctl --failed --no-pager >&2 || true
  fail "the container's systemd is \"$state\", expected \"running\" (failed units above)"
fi
echo "systemd in the container: $(ct systemctl --version | head -1), $state"

# Helpers run in the container.
prop() { ct systemctl show -P "$2" "$1"; }
journal_since() { ct journalctl --no-pager -o cat --since "@$1" "${@:2}"; }
client() { ct python3 /opt/pkgtest/client.py /opt/pkgtest/stubs /opt/pkgtest/token "$@"; }
# Local addresses of listening TCP sockets, one per line.
listening() { ct ss -Hltn | awk '{print $4}' | sort -u; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds
  local seconds=$1 what=$2
  local deadline=$(( $(date +%s) + seconds ))
  shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what (waited $seconds s)"
    sleep 0.2
  done
}

step "dpkg -i $(basename "$deb1") with the packaged config.toml"
out=$(ct dpkg -i "/opt/pkgtest/$(basename "$deb1")" 2>&1) || { echo "$out"; fail "dpkg -i failed"; }
echo "$out"
grep -q "praefect: no \[database\] in /etc/praefect/config.toml, no migrations applied" <<<"$out" ||
  fail "postinst to say that no database is configured and what to run"
for unit in praefect.socket praefect-tls.socket praefect-metrics.socket praefect-maintenance.timer; do
  [ "$(ct systemctl is-enabled "$unit")" = enabled ] || fail "$unit to be enabled on install"
done
for unit in praefect.socket praefect-metrics.socket praefect-maintenance.timer; do
  [ "$(prop "$unit" ActiveState)" = active ] || fail "$unit to be active after install"
done
[ "$(prop praefect-tls.socket ActiveState)" = inactive ] ||
  fail "praefect-tls.socket to wait for /etc/praefect/tls/cert.pem (ConditionPathExists)"
[ "$(prop praefect.service ActiveState)" = inactive ] || fail "praefect.service not to be started on install"
addresses=$(listening)
echo "listening after install:"
echo "$addresses"
grep -qx '127.0.0.1:2305' <<<"$addresses" || fail "praefect.socket to listen on 127.0.0.1:2305"
grep -qx '127.0.0.1:9652' <<<"$addresses" || fail "praefect-metrics.socket to listen on 127.0.0.1:9652"
public=$(grep -Ev '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$' <<<"$addresses" || true)
[ -z "$public" ] || fail "nothing to listen beyond loopback after install, found: $public"

step "systemd-analyze security praefect.service, as an operator sees it"
security=$(ct systemd-analyze security --no-pager praefect.service 2>&1 || true)
score=$(sed -n 's/.*Overall exposure level for praefect.service: \([0-9.]*\).*/\1/p' <<<"$security")
[ -n "$score" ] || fail "systemd-analyze security praefect.service printed no exposure level: $security"
echo "overall exposure level: $score"
grep -q "rates it $score" "$src/man/praefect.8.scd" ||
  fail "praefect(8) (man/praefect.8.scd, SYSTEMD) to give the exposure level systemd-analyze measures: $score"

step "storage nodes, PostgreSQL, config.toml with [database], the client token as a credential"
node_token=$(ct sed -n '/^\[node\]/,/^\[/s/^token = //p' /etc/praefect/secrets)
[ -n "$node_token" ] || fail "a [node] token in the generated /etc/praefect/secrets"
for i in 1 2 3; do
  printf 'listen_addr = "127.0.0.1:900%d"\n[auth]\ntoken = "%s"\n[[storage]]\nname = "gitaly-%d"\npath = "/srv/gitaly-%d"\n' \
    "$i" "$node_token" "$i" "$i" >"$root/srv/gitaly-$i.toml"
done
ct systemctl start pkgtest-gitaly@gitaly-1 pkgtest-gitaly@gitaly-2 pkgtest-gitaly@gitaly-3
# (Type=simple: started means forked; praefect's first call needs them up.)
nodes_listening() { [ "$(grep -cE '^(\[::ffff:)?127\.0\.0\.1\]?:900[123]$' <<<"$(listening)")" = 3 ]; }
wait_for 30 "the three storage nodes to listen on 127.0.0.1:9001-9003" nodes_listening
pg_up() { ct runuser -u postgres -- psql -Atqc 'SELECT 1' >/dev/null 2>&1; }
wait_for 60 "PostgreSQL to start at boot" pg_up
ct runuser -u postgres -- psql -qc 'CREATE ROLE praefect LOGIN'
ct runuser -u postgres -- createdb -O praefect praefect_production
# The packaged file with the test's nodes and database; secrets_file stays.
cat >"$root/etc/praefect/config.toml" <<'CONF'
# Written by tests/package/nspawn_test.sh.
listen_addr = "127.0.0.1:2305"
prometheus_listen_addr = "127.0.0.1:9652"
secrets_file = "/etc/praefect/secrets"

[logging]
level = "info"

[database]
host = "/var/run/postgresql"
user = "praefect"
dbname = "praefect_production"
sslmode = "disable"

[[virtual_storage]]
name = "default"

[[virtual_storage.node]]
storage = "gitaly-1"
address = "tcp://127.0.0.1:9001"

[[virtual_storage.node]]
storage = "gitaly-2"
address = "tcp://127.0.0.1:9002"

[[virtual_storage.node]]
storage = "gitaly-3"
address = "tcp://127.0.0.1:9003"
CONF
cp "$root/etc/praefect/config.toml" "$work/config.good"
# The client token as a systemd credential (it takes precedence over the
# secrets file): the unit's LoadCredential=auth-token:praefect.auth-token.
mkdir -p "$root/etc/credstore"
chmod 0700 "$root/etc/credstore"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$root/etc/credstore/praefect.auth-token"
chmod 0600 "$root/etc/credstore/praefect.auth-token"
cp "$root/etc/credstore/praefect.auth-token" "$root/opt/pkgtest/token"

step "dpkg -i again: postinst applies the migrations as praefect"
migrations=$(ls "$src"/sql/migrations/*.up.sql | wc -l)
out=$(ct dpkg -i --force-confold "/opt/pkgtest/$(basename "$deb1")" 2>&1) || { echo "$out"; fail "dpkg -i failed"; }
echo "$out"
grep -q "praefect sql-migrate: OK (applied $migrations migrations)" <<<"$out" ||
  fail "postinst to apply the $migrations migrations of sql/migrations"
owner=$(ct runuser -u postgres -- psql -Atqd praefect_production -c \
  "SELECT tableowner FROM pg_tables WHERE tablename = 'schema_migrations'")
[ "$owner" = praefect ] || fail "the migrations to run as praefect, schema_migrations belongs to \"$owner\""
[ "$(prop praefect.service ActiveState)" = inactive ] || fail "a reinstall not to start praefect.service"

step "the first call starts praefect (socket activation, Type=notify, STATUS=)"
t0=$(date +%s)
# The first call is one praefect answers itself: right after the first start
# no node has a health record yet (node_status is empty), and a call that
# needs a healthy node can fail with "no healthy node" until praefect's first
# checks are recorded, a moment after it serves (reported to the lead).
[ "$(client exists pkgtest/loop.git)" = false ] || fail "RepositoryExists to say false before the repository is created"
# Active once systemd has read praefect's READY=1, which may come a moment
# after the call was answered.
service_active() { [ "$(prop praefect.service ActiveState)" = active ]; }
wait_for 30 "the first call to start praefect.service (ActiveState=$(prop praefect.service ActiveState))" service_active
[ "$(prop praefect.service Type)" = notify ] || fail "praefect.service to be Type=notify"
grep -q 'listen_addr is ignored: systemd passed a socket named "praefect"' <<<"$(journal_since "$t0" -u praefect.service)" ||
  fail "praefect to take the socket praefect.socket passed (journal: listen_addr is ignored ...)"
status_ok() { grep -Eq '^serving; 3/3 nodes healthy; [0-9]+ replication jobs queued; [0-9.]+ RPC/s$' <<<"$(prop praefect.service StatusText)"; }
wait_for 30 "STATUS= to say serving with 3/3 nodes healthy, found \"$(prop praefect.service StatusText)\"" status_ok
echo "StatusText: $(prop praefect.service StatusText)"
client create pkgtest/loop.git
# A commit to write refs to, pushed with real git through git-remote-gitaly.
ct sh -ec 'rm -rf /tmp/w && git init -q -b main /tmp/w && cd /tmp/w &&
  git -c user.name=T -c user.email=t@example.com commit -q --allow-empty -m pkgtest &&
  GITALY_TOKEN=$(cat /opt/pkgtest/token) git push -q gitaly://127.0.0.1:2305/default/pkgtest/loop.git HEAD:refs/heads/main'
revision=$(ct git -C /tmp/w rev-parse HEAD)
echo "pushed $revision"

# loop_start NAME: the client loop in the background, inside the container.
loop_start() {
  rm -f "$root/opt/pkgtest/$1.stop" "$root/opt/pkgtest/$1.json"
  client loop pkgtest/loop.git "$revision" "/opt/pkgtest/$1.json" "/opt/pkgtest/$1.stop" &
  loop_pid=$!
  # Calls are being made before the operation starts.
  sleep 2
}
# loop_stop NAME T_BEGIN T_END: stops it; fails on any failed call, or when
# no call was in flight between T_BEGIN and T_END (the loop missed the
# operation). See CANCELLED_ON_STOP_CHECK for the one known exception.
loop_stop() {
  sleep 2
  touch "$root/opt/pkgtest/$1.stop"
  wait "$loop_pid" || fail "the client loop exited with an error"
  # When each praefect in the window stopped: from its "stopping" entry to
  # systemd's "Deactivated successfully" (journal timestamps, microseconds).
  ct journalctl -o json --no-pager -u praefect.service --since "@${2%.*}" >"$work/$1.journal"
  python3 - "$root/opt/pkgtest/$1.json" "$2" "$3" "$1" "$work/$1.journal" "$CANCELLED_ON_STOP_CHECK" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
begin, end, name, mode = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[6]
stops, stopping = [], None
for line in open(sys.argv[5]):
    e = json.loads(line)
    t = int(e["__REALTIME_TIMESTAMP"]) / 1e6
    if e.get("MESSAGE", "").startswith("stopping: in-flight calls get graceful_stop_timeout"):
        stopping = t
    elif stopping is not None and "Deactivated successfully" in e.get("MESSAGE", ""):
        stops.append((stopping, t))
        stopping = None
calls, failures = summary["calls"], summary["failures"]
during = [c for c in calls if c[1] >= begin and c[0] <= end]
slowest = max(c[1] - c[0] for c in calls)
print("%s: %d calls, %d failed, %d of them in flight during the %.1f s operation, slowest %.2f s; praefect stopped %s"
      % (name, len(calls), len(failures), len(during), end - begin, slowest,
         ", ".join("%+.2f..%+.2f s" % (a - begin, b - begin) for a, b in stops) or "never"))
known = [f for f in failures if f["code"] == "CANCELLED" and f["details"] == "CANCELLED" and
         any(a - 0.05 <= f["time"] <= b + 0.05 for a, b in stops)]
for f in failures[:20]:
    print("  failed at %+.2f s: %s %s: %s%s" % (f["time"] - begin, f["method"], f["code"], f["details"],
                                               "  <- known bug, see CANCELLED_ON_STOP_CHECK" if f in known else ""))
if not stops:
    sys.exit("FAIL: praefect was not stopped and started again during %s" % name)
if not during:
    sys.exit("FAIL: no call was in flight during %s: the loop did not exercise it" % name)
if failures and (mode == "enforce" or len(known) < len(failures)):
    sys.exit("FAIL: %d of %d calls failed during %s" % (len(failures), len(calls), name))
if known:
    print("KNOWN BUG (not a failure while CANCELLED_ON_STOP_CHECK=todo): %d call(s) that reached praefect while it "
          "was stopping were CANCELLED by grpc's server shutdown" % len(known))
PY
}

step "systemctl reload: a changed log level is applied"
pid=$(prop praefect.service MainPID)
sed -i 's/^level = "info"/level = "debug"/' "$root/etc/praefect/config.toml"
t0=$(date +%s)
ct systemctl reload praefect || fail "systemctl reload praefect failed: $(ct systemctl status --no-pager praefect)"
[ "$(prop praefect.service MainPID)" = "$pid" ] || fail "reload not to restart praefect"
# systemd 252 ends the reload job when ExecReload='s kill returns; praefect
# applies the file a moment later (RELOADING=1 ... READY=1). Its journal
# entry says which level it now logs at.
applied() {
  ct journalctl -o json --no-pager -u praefect.service --since "@$t0" | python3 -c '
import json, sys
entries = [json.loads(line) for line in sys.stdin]
sys.exit(0 if any(e.get("MESSAGE", "").startswith("reload: logging changed") and e.get("LEVEL") == "debug" for e in entries) else 1)'
}
wait_for 20 "praefect to log that it logs at level debug after the reload" applied
echo "reloaded: log level debug, pid $pid kept"

step "systemctl reload with an invalid file: refused, reason shown, old configuration serving"
sed -i 's/^\[logging\]/graceful_stop_timeout = "ten seconds"\n\n[logging]/' "$root/etc/praefect/config.toml"
t0=$(date +%s)
if ct systemctl reload praefect 2>"$work/reload.err"; then
  fail "systemctl reload to fail on an invalid configuration"
fi
cat "$work/reload.err"
status=$(ct systemctl status --no-pager -n 20 praefect || true)
echo "$status"
grep -q 'graceful_stop_timeout' <<<"$status" || fail "systemctl status to show why the reload was refused"
grep -q 'graceful_stop_timeout' <<<"$(journal_since "$t0" -u praefect.service)" || fail "the journal to say why"
[ "$(prop praefect.service MainPID)" = "$pid" ] && [ "$(prop praefect.service ActiveState)" = active ] ||
  fail "praefect to keep running after a refused reload"
client size pkgtest/loop.git >/dev/null || fail "praefect to serve after a refused reload"
# A bare SIGHUP (kill -HUP, or a reload tool that skips the validation):
# praefect itself refuses the file and keeps the running configuration.
t0=$(date +%s)
ct systemctl kill -s HUP --kill-who=main praefect
refused() { grep -q 'keeping the running configuration' <<<"$(journal_since "$t0" -u praefect.service)"; }
wait_for 20 "praefect to refuse the file on SIGHUP" refused
status=$(ct systemctl status --no-pager -n 20 praefect || true)
grep -q 'keeping the running configuration' <<<"$status" || fail "systemctl status to show the refusal: $status"
[ "$(prop praefect.service MainPID)" = "$pid" ] || fail "a refused SIGHUP not to restart praefect"
client size pkgtest/loop.git >/dev/null || fail "praefect to serve after a refused SIGHUP"
cp "$work/config.good" "$root/etc/praefect/config.toml"
ct systemctl reload praefect || fail "the reload of the good file again"

step "systemctl restart under a client loop: no failed call"
pid=$(prop praefect.service MainPID)
socket_since=$(prop praefect.socket ActiveEnterTimestampMonotonic)
loop_start restart
t0=$(date +%s.%N)
ct systemctl restart praefect
t1=$(date +%s.%N)
loop_stop restart "$t0" "$t1"
[ "$(prop praefect.service MainPID)" != "$pid" ] || fail "restart to start a new praefect"
[ "$(prop praefect.socket ActiveEnterTimestampMonotonic)" = "$socket_since" ] ||
  fail "praefect.socket to stay open across the restart (it was restarted)"

# PRAEFECT_NSPAWN_RESTARTS=N: N more restarts under one client loop, to
# measure how often a restart fails a call (2.5 s apart: systemd's start
# limit is 5 starts in 10 s).
if [ "${PRAEFECT_NSPAWN_RESTARTS:-0}" -gt 0 ]; then
  step "$PRAEFECT_NSPAWN_RESTARTS more restarts under one client loop (PRAEFECT_NSPAWN_RESTARTS)"
  loop_start restarts
  t0=$(date +%s.%N)
  for _ in $(seq "$PRAEFECT_NSPAWN_RESTARTS"); do
    ct systemctl restart praefect
    sleep 2.5
  done
  t1=$(date +%s.%N)
  loop_stop restarts "$t0" "$t1"
fi

step "systemctl stop keeps the sockets listening; the next call starts praefect"
ct systemctl stop praefect
[ "$(prop praefect.socket ActiveState)" = active ] && [ "$(prop praefect-metrics.socket ActiveState)" = active ] ||
  fail "the sockets to stay active when praefect.service stops"
grep -qx '127.0.0.1:2305' <<<"$(listening)" || fail "127.0.0.1:2305 to stay listening when praefect.service stops"
client size pkgtest/loop.git >/dev/null || fail "a call to start praefect again"
wait_for 30 "praefect.service to be active after the call" service_active

step "the watchdog restarts a stopped (SIGSTOP) praefect"
pid=$(prop praefect.service MainPID)
restarts=$(prop praefect.service NRestarts)
watchdog=$(prop praefect.service WatchdogUSec)
echo "WatchdogUSec=$watchdog, NRestarts=$restarts, pid $pid"
t0=$(date +%s)
ct kill -STOP "$pid"
restarted() { [ "$(prop praefect.service NRestarts)" -gt "$restarts" ] && [ "$(prop praefect.service ActiveState)" = active ]; }
wait_for 120 "systemd to restart the stopped praefect (WatchdogSec)" restarted
echo "restarted $(( $(date +%s) - t0 ))s after SIGSTOP"
grep -q 'Watchdog timeout' <<<"$(journal_since "$t0" -u praefect.service)" || fail "the journal to say Watchdog timeout"
[ "$(prop praefect.service MainPID)" != "$pid" ] || fail "a new praefect after the watchdog fired"
client size pkgtest/loop.git >/dev/null || fail "praefect to serve after the watchdog restart"

step "dpkg -i $(basename "$deb2") under a client loop: no failed call"
pid=$(prop praefect.service MainPID)
socket_since=$(prop praefect.socket ActiveEnterTimestampMonotonic)
loop_start upgrade
t0=$(date +%s.%N)
out=$(ct dpkg -i --force-confold "/opt/pkgtest/$(basename "$deb2")" 2>&1) || { echo "$out"; fail "the upgrade failed"; }
t1=$(date +%s.%N)
echo "$out"
loop_stop upgrade "$t0" "$t1"
grep -q "praefect sql-migrate: OK (applied 1 migrations)" <<<"$out" || fail "the upgrade to apply 1 migration"
grep -q "9999_package_test: applied" <<<"$out" || fail "the applied migration to be 9999_package_test"
[ "$(ct dpkg-query -W -f '${Version}' praefect)" = "$(dpkg-deb -f "$deb2" Version)" ] || fail "the new version installed"
[ "$(prop praefect.service ActiveState)" = active ] || fail "praefect.service to run after the upgrade"
newpid=$(prop praefect.service MainPID)
[ "$newpid" != "$pid" ] || fail "the upgrade to restart praefect"
exe=$(ct readlink "/proc/$newpid/exe")
[ "$exe" = /usr/sbin/praefect ] || fail "praefect to run the upgraded binary, runs \"$exe\""
[ "$(prop praefect.socket ActiveEnterTimestampMonotonic)" = "$socket_since" ] ||
  fail "praefect.socket to stay open across the upgrade (it was restarted)"

step "praefect-maintenance.timer and its service: the maintenance pass"
ct systemctl list-timers --all --no-pager praefect-maintenance.timer | tee "$work/timers"
grep -q 'praefect-maintenance.timer' "$work/timers" || fail "systemctl list-timers to list praefect-maintenance.timer"
psql_praefect() { ct runuser -u postgres -- psql -Atqd praefect_production -c "$1"; }
backlog_empty() { [ "$(psql_praefect "SELECT count(*) FROM replication_queue WHERE state IN ('ready', 'in_progress', 'failed')")" = 0 ]; }
wait_for 60 "the replication queue to drain before the pass" backlog_empty
t0=$(date +%s)
ct systemctl start praefect-maintenance.service ||
  fail "praefect-maintenance.service failed: $(journal_since "$t0" -u praefect-maintenance.service)"
[ "$(prop praefect-maintenance.service Result)" = success ] || fail "praefect-maintenance.service Result=success"
journal_since "$t0" -u praefect-maintenance.service | tee "$work/maintenance"
grep -q 'praefect maintenance: nodes: 3 of 3 healthy' "$work/maintenance" || fail "the pass to find the three nodes healthy"
grep -Eq '^praefect maintenance: OK: nodes_healthy=3/3 .*mismatches_found=0 .*unrepaired=0 ' "$work/maintenance" ||
  fail "the pass's one-line summary (OK, nothing unrepaired) in the journal"

# A mismatch the pass cannot get repaired: a branch added on a secondary
# behind praefect's back while no praefect runs the replication workers
# (praefect.service stopped; nothing calls it meanwhile). A drop-in gives
# the pass a short -wait, as praefect(8) shows how to change its limits.
ct systemctl stop praefect.service
IFS='|' read -r replica primary <<<"$(psql_praefect "SELECT replica_path, \"primary\" FROM repositories WHERE relative_path = 'pkgtest/loop.git'")"
[ -n "$replica" ] && [ -n "$primary" ] || fail "pkgtest/loop.git's replica path and primary in the database"
secondary=gitaly-1
[ "$primary" = gitaly-1 ] && secondary=gitaly-2
git_dir="/srv/$secondary/$replica"
ct git --git-dir="$git_dir" update-ref refs/heads/behind-the-back "$(ct git --git-dir="$git_dir" rev-parse refs/heads/loop)"
mkdir -p "$root/etc/systemd/system/praefect-maintenance.service.d"
cat >"$root/etc/systemd/system/praefect-maintenance.service.d/short-wait.conf" <<'DROPIN'
[Service]
ExecStart=
ExecStart=/usr/sbin/praefect -config /etc/praefect/config.toml maintenance -content-budget 1m -wait 5s
DROPIN
ct systemctl daemon-reload
t0=$(date +%s)
ct systemctl start praefect-maintenance.service && fail "praefect-maintenance.service to fail with a mismatch left unrepaired"
[ "$(prop praefect-maintenance.service Result)" = exit-code ] ||
  fail "praefect-maintenance.service Result=exit-code, got $(prop praefect-maintenance.service Result)"
[ "$(prop praefect-maintenance.service ExecMainStatus)" = 2 ] ||
  fail "the pass to exit 2, got $(prop praefect-maintenance.service ExecMainStatus)"
ct systemctl --failed --no-pager --plain | tee "$work/failed"
grep -q 'praefect-maintenance.service' "$work/failed" || fail "systemctl --failed to list praefect-maintenance.service"
status=$(ct systemctl status --no-pager -n 20 praefect-maintenance.service || true)
echo "$status"
grep -Eq 'praefect maintenance: UNREPAIRED: .*mismatches_found=1 mismatches_repaired=0 .*unrepaired=1 ' <<<"$status" ||
  fail "systemctl status praefect-maintenance to show the UNREPAIRED summary"
grep -q "replica content differs from the primary's at the same generation" <<<"$(journal_since "$t0" -u praefect-maintenance.service)" ||
  fail "the mismatch logged in the journal"
# The queued repair runs once praefect does; the next pass finds nothing.
ct systemctl start praefect.service
client size pkgtest/loop.git >/dev/null || fail "praefect to serve again after the pass"
wait_for 60 "the mismatch's repair to run once praefect is back" backlog_empty
ct systemctl reset-failed praefect-maintenance.service
t0=$(date +%s)
ct systemctl start praefect-maintenance.service ||
  fail "the pass after the repair failed: $(journal_since "$t0" -u praefect-maintenance.service)"
grep -Eq '^praefect maintenance: OK: .*mismatches_found=0 .*unrepaired=0 ' <<<"$(journal_since "$t0" -u praefect-maintenance.service)" ||
  fail "the pass after the repair to find nothing"
[ -z "$(ct git --git-dir="$git_dir" for-each-ref refs/heads/behind-the-back)" ] ||
  fail "the branch made behind praefect's back to be gone from $secondary after the repair"
rm -r "$root/etc/systemd/system/praefect-maintenance.service.d"
ct systemctl daemon-reload

step "/metrics on loopback: no repository path, no node address"
metrics=$(ct python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9652/metrics", timeout=10).read().decode())')
grep -q '^grpc_server_handled_total' <<<"$metrics" || fail "/metrics to answer with praefect's metrics"
grep -Eq 'pkgtest/loop|@cluster' <<<"$metrics" && fail "/metrics to show no repository path"
grep -Eq '127\.0\.0\.1:900[123]' <<<"$metrics" && fail "/metrics to show no node address"
echo "labels on /metrics: $(grep -o '[a-z_]*="' <<<"$metrics" | sort -u | tr -d '="' | tr '\n' ' ')"

step "access log entries in the journal (journalctl -o json)"
# One entry per finished call, with the fields praefect(8) LOGGING names.
ct journalctl --no-pager -o json -u praefect.service >"$work/access.journal"
python3 - "$work/access.journal" <<'PY' || fail "the access log entries in the journal (above)"
import json, sys
writes = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("GRPC_REQUEST_FULLMETHOD") == "/gitaly.RepositoryService/WriteRef" and e.get("GRPC_CODE") == "OK":
        writes.append(e)
if not writes:
    sys.exit("FAIL: no journal entry with GRPC_REQUEST_FULLMETHOD=/gitaly.RepositoryService/WriteRef GRPC_CODE=OK")
e = writes[-1]
want = {
    "MESSAGE": lambda v: v.startswith("finished unary call with code OK"),
    "PRIORITY": lambda v: v == "6",
    "GRPC_METHOD": lambda v: v == "WriteRef",
    "GRPC_SERVICE": lambda v: v == "gitaly.RepositoryService",
    "GRPC_TIME_MS": lambda v: float(v) >= 0,
    "GRPC_START_TIME": lambda v: v.startswith("20"),
    "CORRELATION_ID": lambda v: len(v) > 0,
    "VIRTUAL_STORAGE": lambda v: v == "default",
    "RELATIVE_PATH": lambda v: v == "pkgtest/loop.git",
    "STORAGE": lambda v: v.startswith("gitaly-"),
    "SPAN_KIND": lambda v: v == "server",
    "CODE_FILE": lambda v: v.endswith(".cc"),
    "CODE_LINE": lambda v: int(v) > 0,
    "CODE_FUNC": lambda v: len(v) > 0,
    "SYSLOG_IDENTIFIER": lambda v: v == "praefect",
}
bad = ["%s=%r" % (k, e.get(k)) for k, ok in want.items() if k not in e or not ok(e[k])]
for k in sorted(want):
    print("  %s=%s" % (k, e.get(k, "(missing)")))
if bad:
    sys.exit("FAIL: access log entry fields: " + ", ".join(bad))
print("%d access log entries for WriteRef; the last one's fields are above" % len(writes))
PY

step "dpkg --purge"
ct dpkg --purge praefect
left=$(ct systemctl list-unit-files --no-legend 'praefect*' || true)
[ -z "$left" ] || fail "no praefect unit files after purge, found: $left"
for unit in praefect.service praefect.socket praefect-metrics.socket praefect-maintenance.timer; do
  [ "$(prop "$unit" ActiveState)" = inactive ] || fail "$unit to be stopped after purge"
done
grep -Eq ':(2305|9652)$' <<<"$(listening)" && fail "nothing to listen on 2305 or 9652 after purge"
ct test -e /etc/praefect && fail "purge to remove /etc/praefect"
ct test -e /var/lib/praefect && fail "purge to remove /var/lib/praefect"
step "PASS"
