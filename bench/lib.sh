# shellcheck shell=bash disable=SC2154  # the REQUIRES variables below come from the sourcing script
# bench/lib.sh: what the bench scripts share: starting and stopping a
# storage node, nginx grpc_pass, praefect and a throwaway PostgreSQL in a
# temporary directory, v2 tokens, replica paths, and reading a process's
# memory and CPU. Sourced, not run.
#
# REQUIRES, set by the script before sourcing: root, bin (the directory of
# praefect-storage-node and grpc_load), praefect_bin, node_token,
# client_token, virtual, keep (1: keep the temporary directory), and
# bench_name (for messages). Sets work (the temporary directory) and pids
# (every server started, stopped on exit).

work=$(mktemp -d "${TMPDIR:-/tmp}/praefect-$bench_name.XXXXXX")
pids=()
cleanup() {
  local pid i
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Belt and braces: the servers get SIGTERM from the kernel should the
# script die without running its trap (SIGKILL).
spawn() { exec setpriv --pdeathsig TERM -- "$@"; }  # REQUIRES: called with &

fail() {
  echo "bench/$bench_name: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID SECONDS: 0 when PORT accepts, 1 when PID died or time ran out.
wait_port() {
  local deadline=$((SECONDS + $3))
  until port_open "$1"; do
    kill -0 "$2" 2>/dev/null || return 1
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

vmhwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
vmrss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# cpu_ticks PID: user + system clock ticks so far (children not included).
cpu_ticks() {
  if [ -z "$1" ]; then echo 0; return; fi
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
# children_ticks PID: user + system clock ticks of PID's reaped children. For
# the postmaster: the CPU of the backends that have exited; for a storage
# node: its git processes.
children_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
ticks_s() { awk -v t="$1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }'; }

# replica_path_sql ID: the SQL expression of the replica path praefect
# derives for repository id ID (datastore::DeriveReplicaPath:
# @cluster/repositories/<aa>/<bb>/<id>, aa and bb the first byte and the
# second of the SHA-256 of the decimal id, in hex).
replica_path_sql() {
  echo "'@cluster/repositories/' || substr(encode(sha256($1::text::bytea), 'hex'), 1, 2) || '/' ||
  substr(encode(sha256($1::text::bytea), 'hex'), 3, 2) || '/' || $1"
}

# bearer SECRET: Gitaly's v2 token ("Bearer v2.<hmac-sha256(secret, ts)>.<ts>"),
# valid for 30 s from now.
bearer() {
  local ts
  ts=$(date +%s)
  echo "Bearer v2.$(printf %s "$ts" | openssl dgst -sha256 -hmac "$1" | awk '{print $NF}').$ts"
}

# --- servers ---------------------------------------------------------------
# Each start_* function sets started_pid and started_port. Under valgrind
# (the callgrind sections) start-up takes seconds, hence the longer waits.

# start_node NAME [STORAGE [WRAPPER ARGS...]]: a storage node with storage
# STORAGE (default gitaly-1) in $work/NAME, run under WRAPPER when one is
# given (e.g. perf stat ... --). Also sets started_node_pid: the node's own
# process (a child of a WRAPPER that forks; started_pid otherwise).
start_node() {
  local dir="$work/$1" storage=${2:-gitaly-1} deadline
  shift $(($# < 2 ? $# : 2))
  mkdir -p "$dir/storage"
  cat >"$dir/node.toml" <<EOF
listen_addr = "127.0.0.1:0"
[[storage]]
name = "$storage"
path = "$dir/storage"
[auth]
token = "$node_token"
EOF
  spawn "$@" "$bin/praefect-storage-node" -config "$dir/node.toml" >"$dir/node.out" 2>"$dir/node.err" &
  started_pid=$!
  pids+=("$started_pid")
  deadline=$((SECONDS + 30))
  until grep -q "^listening on tcp://" "$dir/node.out" 2>/dev/null; do
    kill -0 "$started_pid" 2>/dev/null || { cat "$dir/node.err" >&2; fail "storage node $1 exited"; }
    [ $SECONDS -lt $deadline ] || fail "storage node $1 did not listen within 30 s"
    sleep 0.05
  done
  started_port=$(sed -n 's/^listening on tcp:\/\/.*:\([0-9]*\)$/\1/p' "$dir/node.out" | head -n1)
  started_node_pid=$(pgrep -P "$started_pid" -x praefect-storag || true)  # comm: 15 characters
  if [ -n "$started_node_pid" ]; then pids+=("$started_node_pid"); else started_node_pid=$started_pid; fi
}

# start_nginx NAME UPSTREAM_PORT [valgrind ARGS...]: nginx grpc_pass in
# $work/NAME. Under valgrind nginx runs as one process (master_process off),
# so that the process measured is the one doing the work.
# Optional globals: nginx_server_extra (directives inside server {}, e.g. a
# TLS listener), nginx_worker_connections (default 1024),
# nginx_upstream_keepalive (idle upstream connections kept, default 32),
# nginx_main_extra (directives at the top level, e.g. worker_rlimit_nofile).
start_nginx() {
  local dir="$work/$1" upstream=$2 master=on
  shift 2
  [ $# -eq 0 ] || master=off
  started_port=$(free_port)
  mkdir -p "$dir/logs" "$dir/tmp"
  chmod 755 "$work" "$dir" "$dir/tmp"
  # What an operator would set, so that the comparison is fair to nginx:
  # keepalive to the node and keepalive_requests raised on both sides
  # (nginx's defaults open an upstream connection per call and send GOAWAY
  # every 1000 calls), no request body limit (pushes), and grpc_buffer_size
  # 1m (the default of one page makes nginx read a streamed response 4 KiB
  # at a time).
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
master_process $master;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
${nginx_main_extra:-}
events { worker_connections ${nginx_worker_connections:-1024}; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  client_max_body_size 0;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  upstream storage_node {
    server 127.0.0.1:$upstream;
    keepalive ${nginx_upstream_keepalive:-32};
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$started_port http2;
${nginx_server_extra:-}
    location / {
      grpc_pass grpc://storage_node;
      grpc_buffer_size 1m;
      grpc_read_timeout 600s;
      grpc_send_timeout 600s;
    }
  }
}
EOF
  spawn "$@" nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" >"$dir/stdout" 2>"$dir/stderr" &
  started_pid=$!
  pids+=("$started_pid")
  wait_port "$started_port" "$started_pid" 60 ||
    { cat "$dir/stderr" "$dir/logs/error.log" >&2; fail "nginx $1 did not listen"; }
}

# nginx_worker PID: the worker process of the nginx master PID.
nginx_worker() {
  local w
  w=$(pgrep -P "$1" | head -n1)
  [ -n "$w" ] || fail "nginx $1 has no worker process"
  echo "$w"
}

# start_praefect NAME NODE_PORT [valgrind ARGS...]: praefect in $work/NAME,
# virtual storage $virtual with the node as gitaly-1. Returns 1 when it does
# not listen (within 15 s, 120 s under valgrind).
# Optional global: praefect_top_extra (top-level keys, e.g. tls_listen_addr;
# may be followed by tables such as [tls], as it comes before [auth]).
start_praefect() {
  local dir="$work/$1" node=$2 wait=15
  shift 2
  [ $# -eq 0 ] || wait=120
  mkdir -p "$dir"
  started_port=$(free_port)
  cat >"$dir/praefect.toml" <<EOF
listen_addr = "127.0.0.1:$started_port"
${praefect_top_extra:-}

[auth]
token = "$client_token"

# No [database]: the metadata stays in memory, the proxy hop is what is measured.

[logging]
# nginx runs with access_log off; so does praefect, unless bench/run --access-log.
access_log_level = "${access_log_level:-off}"

[[virtual_storage]]
name = "$virtual"

[[virtual_storage.node]]
storage = "gitaly-1"
address = "tcp://127.0.0.1:$node"
token = "$node_token"
EOF
  spawn "$@" "$praefect_bin" -config "$dir/praefect.toml" >"$dir/praefect.out" 2>"$dir/praefect.err" &
  started_pid=$!
  pids+=("$started_pid")
  wait_port "$started_port" "$started_pid" "$wait"
}

# create_repo PRAEFECT_PORT NODE_DIR NAME [SOURCE]: creates NAME through
# praefect (RepositoryService/CreateRepository on the virtual storage: only
# a repository created through praefect is known to it), finds the replica
# praefect had the node create (@cluster/repositories/<aa>/<bb>/<id>) and
# replaces it with a bare clone of SOURCE. Prints the replica's path
# relative to the node's storage, which direct and nginx columns use.
create_repo() {
  local port=$1 storage="$work/$2/storage" name=$3 source=${4:-} before replica
  before=$(cd "$storage" && ls -d @cluster/repositories/*/*/* 2>/dev/null | sort || true)
  "$bin/grpc_load" --target "127.0.0.1:$port" --storage "$virtual" --token "$client_token" --path "$name" \
    --mode create >/dev/null || return 1
  replica=$(comm -13 <(echo "$before") <(cd "$storage" && ls -d @cluster/repositories/*/*/* | sort) | head -n1)
  [ -n "$replica" ] || { echo "bench/$bench_name: no new replica under $storage/@cluster after creating $name" >&2; return 1; }
  if [ -n "$source" ]; then
    # Written on the node's disk: faster than a push through praefect, and
    # the objects keep the source's (zero) compression.
    rm -rf "${storage:?}/$replica"
    git clone -q --bare "$source" "$storage/$replica"
  fi
  echo "$replica"
}

# --- PostgreSQL ---------------------------------------------------------------
# start_pg [POSTGRES OPTION...]: a throwaway PostgreSQL in $work/pg (initdb,
# then postgres on a unix socket only, fsync off, OPTIONS added), with an
# empty database praefect. Sets pg_dir (the socket's directory), pg_pid (the
# postmaster) and pgbin; defines psql_q (psql on the socket, unaligned, as
# postgres) and db (psql_q on the database praefect). Optional global:
# PRAEFECT_PG_BINDIR (default /usr/lib/postgresql/15/bin), as the
# end-to-end tests.
#
# PostgreSQL refuses to run as root: then initdb and the server run as
# nobody, in a directory nobody owns (the temporary directory is made
# traversable for it). On exit, cleanup_pg replaces lib.sh's cleanup: it
# stops the servers first (so that no client holds a session while
# PostgreSQL shuts down), then PostgreSQL (fast shutdown), then removes the
# directory (unless keep=1); --pdeathsig stops PostgreSQL should the script
# be killed with SIGKILL.
pg_pid=""
stop_pg() {
  local i
  [ -n "$pg_pid" ] || return 0
  kill -INT "$pg_pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pg_pid" 2>/dev/null || true
  wait "$pg_pid" 2>/dev/null || true
  pg_pid=""
}
cleanup_pg() {
  local rc=$? keep_asked=$keep
  keep=1
  cleanup 2>/dev/null
  stop_pg
  if [ "$keep_asked" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
psql_q() { psql -h "$pg_dir" -U postgres -X -v ON_ERROR_STOP=1 -At "$@"; }
db() { psql_q -d praefect "$@"; }
start_pg() {
  local pg_user=() deadline opts=() opt
  pgbin=${PRAEFECT_PG_BINDIR:-/usr/lib/postgresql/15/bin}
  pg_dir="$work/pg"
  mkdir -p "$pg_dir"
  if [ "$(id -u)" = 0 ]; then
    pg_user=(--reuid=nobody --regid=nogroup --clear-groups)
    chmod 755 "$work"
    chown nobody:nogroup "$pg_dir"
  fi
  trap cleanup_pg EXIT
  for opt in "$@"; do opts+=(-c "$opt"); done
  [ -x "$pgbin/initdb" ] || fail "no $pgbin/initdb (Debian's postgresql package; or set PRAEFECT_PG_BINDIR)"
  setpriv "${pg_user[@]}" -- "$pgbin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-sync \
    >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; fail "initdb failed"; }
  setpriv --pdeathsig TERM "${pg_user[@]}" -- "$pgbin/postgres" -D "$pg_dir/data" -k "$pg_dir" \
    -c listen_addresses= -c fsync=off -c unix_socket_permissions=0777 "${opts[@]}" >"$pg_dir/postgres.log" 2>&1 &
  pg_pid=$!
  deadline=$((SECONDS + 30))
  until psql_q -d postgres -c "SELECT 1" >/dev/null 2>&1; do
    kill -0 "$pg_pid" 2>/dev/null || { cat "$pg_dir/postgres.log" >&2; fail "PostgreSQL exited"; }
    [ $SECONDS -lt $deadline ] || fail "PostgreSQL does not answer within 30 s"
    sleep 0.1
  done
  psql_q -d postgres -c "CREATE DATABASE praefect" >/dev/null
}
