#!/usr/bin/env bash
# End-to-end scenarios for git-remote-gitaly against praefect-storage-node,
# with real git.
#   git_remote_test.sh SCENARIO STORAGE_NODE_BINARY HELPER_DIR
# Each scenario starts its own node on a unix socket in a fresh temporary
# directory; git finds git-remote-gitaly through PATH.
set -euo pipefail

scenario=$1
server_bin=$2
helper_dir=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/git-remote-test.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  # Sanitizer builds: a report from the server (leaks show at exit) fails the test.
  if grep -q "Sanitizer" "$work/server.err" 2>/dev/null; then
    cat "$work/server.err" >&2
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL [$scenario]: $*" >&2
  if [ -s "$work/server.err" ]; then
    echo "--- server stderr ---" >&2
    tail -n 30 "$work/server.err" >&2
  fi
  exit 1
}

export PATH="$helper_dir:$PATH"
export HOME="$work/home"
export GIT_CONFIG_NOSYSTEM=1
export GIT_TERMINAL_PROMPT=0
unset GITALY_TOKEN GIT_DIR GIT_WORK_TREE
mkdir -p "$HOME" "$work/storage"
git config --global user.name "Test"
git config --global user.email "test@example.com"
git config --global init.defaultBranch main
git config --global advice.detachedHead false

# start_server [--token SECRET]: writes the node's config, starts it and
# polls (deadline 30 s) until it prints its listening line.
start_server() {
  {
    echo "socket_path = \"$work/gitaly.sock\""
    if [ "${1:-}" = "--token" ]; then printf '[auth]\ntoken = "%s"\n' "$2"; fi
    printf '[[storage]]\nname = "default"\npath = "%s"\n' "$work/storage"
  } >"$work/node.toml"
  "$server_bin" -config "$work/node.toml" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  local deadline=$((SECONDS + 30))
  until grep -q "^listening on unix:" "$work/server.out" 2>/dev/null; do
    kill -0 "$server_pid" 2>/dev/null || fail "server exited before listening"
    [ $SECONDS -lt $deadline ] || fail "server did not listen within 30 s"
    sleep 0.05
  done
  export GITALY_ADDRESS="unix:$work/gitaly.sock"
}

url() { echo "gitaly://localhost/default/$1"; }

# refs REPO PATTERN...: "<oid> <ref>" lines, sorted.
refs() {
  local repo=$1
  shift
  git -C "$repo" for-each-ref --format='%(objectname) %(refname)' "$@" | sort
}

# make_commits DIR N PREFIX: N commits, each changing a file.
make_commits() {
  local dir=$1 n=$2 prefix=$3 i
  for ((i = 1; i <= n; i++)); do
    echo "$prefix $i" >"$dir/file-$((i % 17)).txt"
    git -C "$dir" add -A
    git -C "$dir" commit -q -m "$prefix commit $i"
  done
}

expect_in() {  # expect_in FILE TEXT
  grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "expected \"$2\" in $(basename "$1")"; }
}

new_bare() { git init -q --bare "$work/storage/$1"; }

scenario_roundtrip() {
  start_server
  new_bare repo.git
  git clone -q "$(url repo.git)" "$work/c1" 2>"$work/clone-empty.err" || fail "clone of an empty repository"
  expect_in "$work/clone-empty.err" "empty repository"

  make_commits "$work/c1" 200 main
  git -C "$work/c1" checkout -q -b feature
  make_commits "$work/c1" 20 feature
  local i
  for ((i = 1; i <= 10; i++)); do git -C "$work/c1" tag "v$i" "main~$((i * 10))"; done
  git -C "$work/c1" tag -a -m "annotated" v-annotated main
  git -C "$work/c1" push -q origin main feature --tags 2>"$work/push.err" || { cat "$work/push.err"; fail "push"; }

  local bare="$work/storage/repo.git"
  [ "$(refs "$work/c1" refs/heads refs/tags)" = "$(refs "$bare" refs/heads refs/tags)" ] ||
    fail "refs on the server differ from the pushed refs"
  git -C "$bare" fsck --strict --no-progress >"$work/fsck-bare.out" 2>&1 || { cat "$work/fsck-bare.out"; fail "fsck of the server's repository"; }

  git clone -q "$(url repo.git)" "$work/c2" || fail "second clone"
  local from_clone
  from_clone=$(git -C "$work/c2" for-each-ref --format='%(objectname) %(refname)' refs/remotes/origin refs/tags |
    grep -v ' refs/remotes/origin/HEAD$' | sed 's# refs/remotes/origin/# refs/heads/#' | sort)
  [ "$from_clone" = "$(refs "$bare" refs/heads refs/tags)" ] || fail "second clone's refs differ from the server's"
  [ "$(git -C "$work/c2" rev-list --count origin/main)" = 200 ] || fail "second clone lacks commits"
  git -C "$work/c2" fsck --strict --no-progress >"$work/fsck.out" 2>&1 || { cat "$work/fsck.out"; fail "fsck of the clone"; }
  if grep -E "^(error|missing|broken)" "$work/fsck.out"; then fail "fsck reported problems"; fi

  # Concurrent streams must not share pipes (a leaked descriptor would hang
  # one clone waiting for EOF).
  local pids=() n
  for n in 1 2 3 4; do
    git clone -q "$(url repo.git)" "$work/par$n" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || fail "one of 4 concurrent clones failed"; done
  for n in 1 2 3 4; do
    [ "$(git -C "$work/par$n" rev-parse origin/feature)" = "$(git -C "$bare" rev-parse feature)" ] ||
      fail "concurrent clone $n differs"
  done
  echo "roundtrip: 220 commits, 11 tags pushed and cloned back; refs equal; fsck clean; 4 concurrent clones"
}

scenario_non_fast_forward() {
  start_server
  new_bare repo.git
  git clone -q "$(url repo.git)" "$work/c1" 2>/dev/null
  make_commits "$work/c1" 3 base
  git -C "$work/c1" push -q origin main
  git clone -q "$(url repo.git)" "$work/c2"
  make_commits "$work/c1" 1 theirs
  git -C "$work/c1" push -q origin main
  make_commits "$work/c2" 1 ours
  if git -C "$work/c2" push origin main >"$work/push.out" 2>&1; then fail "non-fast-forward push succeeded"; fi
  expect_in "$work/push.out" "[rejected]"
  expect_in "$work/push.out" "main -> main"
  [ "$(git -C "$work/storage/repo.git" rev-parse main)" = "$(git -C "$work/c1" rev-parse main)" ] ||
    fail "rejected push changed the server"

  # Refused by receive-pack itself: reported as a remote rejection.
  git -C "$work/storage/repo.git" config receive.denyNonFastForwards true
  if git -C "$work/c2" push --force origin main >"$work/force.out" 2>&1; then fail "denied force push succeeded"; fi
  expect_in "$work/force.out" "[remote rejected]"
  git -C "$work/storage/repo.git" config receive.denyNonFastForwards false
  git -C "$work/c2" push -q --force origin main || fail "force push"
  [ "$(git -C "$work/storage/repo.git" rev-parse main)" = "$(git -C "$work/c2" rev-parse main)" ] || fail "force push not applied"
  echo "non-fast-forward: rejected as git reports it; remote denial and forced update behave"
}

scenario_hook_rejection() {
  start_server
  new_bare repo.git
  git clone -q "$(url repo.git)" "$work/c1" 2>/dev/null
  make_commits "$work/c1" 2 base
  git -C "$work/c1" push -q origin main
  local before
  before=$(git -C "$work/storage/repo.git" rev-parse main)
  cat >"$work/storage/repo.git/hooks/pre-receive" <<'HOOK'
#!/bin/sh
echo "GitLab: pushes by $GL_ID over $GL_PROTOCOL are frozen" >&2
exit 1
HOOK
  chmod +x "$work/storage/repo.git/hooks/pre-receive"
  make_commits "$work/c1" 1 blocked
  if git -C "$work/c1" push origin main >"$work/push.out" 2>&1; then fail "push through a rejecting hook succeeded"; fi
  expect_in "$work/push.out" "remote: GitLab: pushes by user-1 over ssh are frozen"
  expect_in "$work/push.out" "pre-receive hook declined"
  [ "$(git -C "$work/storage/repo.git" rev-parse main)" = "$before" ] || fail "rejected push changed the server"
  echo "hook-rejection: the hook's message reached the pusher; ref unchanged"
}

scenario_bad_token() {
  start_server --token s3cret
  new_bare repo.git
  if GITALY_TOKEN=wrong git clone "$(url repo.git)" "$work/bad" >"$work/bad.out" 2>&1; then fail "clone with a wrong token succeeded"; fi
  expect_in "$work/bad.out" "fatal: git-remote-gitaly: SSHUploadPack"
  expect_in "$work/bad.out" "PERMISSION_DENIED"
  expect_in "$work/bad.out" "check GITALY_TOKEN"
  if git clone "$(url repo.git)" "$work/none" >"$work/none.out" 2>&1; then fail "clone without a token succeeded"; fi
  expect_in "$work/none.out" "UNAUTHENTICATED"
  GITALY_TOKEN=s3cret git clone -q "$(url repo.git)" "$work/good" 2>/dev/null || fail "clone with the right token"
  make_commits "$work/good" 1 ok
  GITALY_TOKEN=s3cret git -C "$work/good" push -q origin main || fail "push with the right token"
  if GITALY_TOKEN=wrong git -C "$work/good" push origin main:other >"$work/badpush.out" 2>&1; then fail "push with a wrong token succeeded"; fi
  expect_in "$work/badpush.out" "SSHReceivePack"
  git -C "$work/storage/repo.git" rev-parse -q --verify refs/heads/other >/dev/null && fail "refused push created a ref"
  echo "bad-token: wrong and missing tokens refused with a clear message; right token works"
}

scenario_ls_remote_fetch() {
  start_server
  new_bare repo.git
  git clone -q "$(url repo.git)" "$work/c1" 2>/dev/null
  make_commits "$work/c1" 5 base
  git -C "$work/c1" tag v1
  git -C "$work/c1" push -q origin main --tags
  git ls-remote "$(url repo.git)" >"$work/ls.out" || fail "ls-remote"
  local want
  want=$( (git -C "$work/storage/repo.git" show-ref; echo "$(git -C "$work/storage/repo.git" rev-parse HEAD) HEAD") |
    awk '{print $1 "\t" $2}' | sort)
  [ "$(sort "$work/ls.out")" = "$want" ] || { cat "$work/ls.out"; fail "ls-remote output differs from the server's refs"; }
  # Protocol v2 is the helper's default for fetches; v0 still works.
  GIT_TRACE_PACKET="$work/trace" git ls-remote "$(url repo.git)" >/dev/null || fail "ls-remote (trace)"
  expect_in "$work/trace" "version 2"
  GIT_PROTOCOL= git ls-remote "$(url repo.git)" >"$work/ls0.out" || fail "ls-remote over protocol v0"
  [ "$(sort "$work/ls0.out")" = "$want" ] || fail "protocol v0 ls-remote differs"

  git clone -q "$(url repo.git)" "$work/c2"
  make_commits "$work/c1" 7 more
  git -C "$work/c1" tag v2
  git -C "$work/c1" push -q origin main --tags
  git -C "$work/c2" fetch -q --tags origin || fail "fetch"
  [ "$(git -C "$work/c2" rev-parse origin/main)" = "$(git -C "$work/c1" rev-parse main)" ] || fail "fetch did not update origin/main"
  [ "$(git -C "$work/c2" rev-parse v2)" = "$(git -C "$work/c1" rev-parse v2)" ] || fail "fetch did not bring tag v2"
  git -C "$work/c2" fetch origin >"$work/noop.out" 2>&1 || fail "no-op fetch"
  echo "ls-remote-fetch: ls-remote equals show-ref; fetch brings new commits and tags"
}

scenario_hashed_path() {
  start_server
  new_bare "@hashed/ab/cd/abcd.git"
  local u
  u=$(url "@hashed/ab/cd/abcd.git")
  git clone -q "$u" "$work/c1" 2>/dev/null || fail "clone of a nested relative path"
  make_commits "$work/c1" 2 nested
  git -C "$work/c1" push -q origin main || fail "push to a nested relative path"
  [ "$(git -C "$work/storage/@hashed/ab/cd/abcd.git" rev-parse main)" = "$(git -C "$work/c1" rev-parse main)" ] ||
    fail "push did not reach @hashed/ab/cd/abcd.git"
  mkdir -p "$work/outside.git" && git init -q --bare "$work/outside.git"
  if git ls-remote "gitaly://localhost/default/../outside.git" >"$work/escape.out" 2>&1; then fail "path escape accepted"; fi
  expect_in "$work/escape.out" "relative path escapes root directory"
  echo "hashed-path: storage = first component, relative path = the rest; escape refused"
}

scenario_bad_repository() {
  start_server
  if git clone "$(url missing.git)" "$work/m" >"$work/missing.out" 2>&1; then fail "clone of a missing repository succeeded"; fi
  expect_in "$work/missing.out" "NOT_FOUND"
  expect_in "$work/missing.out" "repository \"missing.git\" on storage \"default\" does not exist"
  # A directory that passes the node's check but is no repository: git's
  # own stderr and exit status come back through the stream.
  mkdir -p "$work/storage/broken.git/objects" "$work/storage/broken.git/refs"
  # timeout: a failed remote git must end the call, not wait for git to hang up.
  if timeout 10 git ls-remote "$(url broken.git)" >"$work/broken.out" 2>&1; then fail "broken repository accepted"; fi
  expect_in "$work/broken.out" "does not appear to be a git repository"
  grep -q "fatal: git-remote-gitaly" "$work/broken.out" && fail "helper added an error although git's exit status came back"
  if git ls-remote "gitaly://localhost/nope/r.git" >"$work/storage.out" 2>&1; then fail "unknown storage accepted"; fi
  expect_in "$work/storage.out" "no such storage: \"nope\""
  if GITALY_CONNECT_TIMEOUT=2 GITALY_ADDRESS="unix:$work/no-such.sock" timeout 60 git ls-remote "$(url r.git)" >"$work/down.out" 2>&1; then
    fail "unreachable server accepted"
  fi
  expect_in "$work/down.out" "cannot connect to unix:$work/no-such.sock"
  echo "bad-repository: missing repository, unknown storage and unreachable server each named"
}

scenario_bench_large_clone() {
  start_server
  local bare="$work/storage/big.git" src="$work/src"
  git init -q "$src"
  local i
  # ~100 MiB of incompressible blobs, so the pack is ~100 MiB.
  for ((i = 0; i < 50; i++)); do head -c $((2 * 1024 * 1024)) /dev/urandom >"$src/blob-$i.bin"; done
  git -C "$src" add -A
  git -C "$src" commit -q -m big
  git clone -q --bare "$src" "$bare"
  git -C "$bare" repack -q -a -d
  local pack_mib
  pack_mib=$(du -sm "$bare/objects/pack" | cut -f1)

  local t0 t1 t2 t3
  t0=$(date +%s.%N)
  git clone -q "$(url big.git)" "$work/via-helper" || fail "clone via git-remote-gitaly"
  t1=$(date +%s.%N)
  git clone -q "file://$bare" "$work/via-file" || fail "clone via file://"
  t2=$(date +%s.%N)
  git clone -q "$(url big.git)" "$work/via-helper-2" || fail "second clone via git-remote-gitaly"
  t3=$(date +%s.%N)
  [ "$(git -C "$work/via-helper" rev-parse HEAD^{tree})" = "$(git -C "$bare" rev-parse HEAD^{tree})" ] ||
    fail "helper clone differs"
  git -C "$work/via-helper" fsck --no-progress >/dev/null 2>&1 || fail "fsck of the helper clone"
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v m="$pack_mib" 'BEGIN {
    h = b - a; f = c - b; h2 = d - c;
    printf "bench-large-clone: pack %d MiB: git-remote-gitaly %.2f s (again %.2f s), file:// %.2f s, ratio %.2f\n", m, h, h2, f, (h < h2 ? h : h2) / f }'
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || fail "$what (not within ${limit} s)"
    sleep 0.05
  done
}

server_has_children() { pgrep -P "$server_pid" >/dev/null; }
server_has_no_children() { ! server_has_children; }

scenario_client_abort() {
  start_server
  local bare="$work/storage/big.git" src="$work/src" i
  git init -q "$src"
  for ((i = 0; i < 16; i++)); do head -c $((2 * 1024 * 1024)) /dev/urandom >"$src/blob-$i.bin"; done
  # Random data does not compress: do not spend time trying.
  git -C "$src" -c core.looseCompression=0 add -A
  git -C "$src" commit -q -m big
  git clone -q --bare "$src" "$bare"
  # A client that stops reading mid-clone (SIGSTOP to git, its index-pack
  # and the helper: the stream and the server's git back up), then dies
  # with all its processes. setsid: the clone's pid is its process group.
  setsid git clone -q "$(url big.git)" "$work/aborted" 2>/dev/null &
  local clone_pgid=$!
  wait_until 30 "server started git for the clone" server_has_children
  kill -STOP -- "-$clone_pgid"
  # [g]: keep pgrep from matching its own caller's command line.
  local helper="[g]it-remote-gitaly origin gitaly://localhost/default/big.git"
  pgrep -f "$helper" >/dev/null || fail "clone finished before it could be stalled"
  server_has_children || fail "server's git finished before the clone could be stalled"
  kill -KILL -- "-$clone_pgid"
  wait "$clone_pgid" 2>/dev/null || true
  wait_until 30 "helper gone" bash -c "! pgrep -f '$helper' >/dev/null"
  # Within seconds, although git is silent while it computes the pack.
  wait_until 5 "server killed and reaped its git processes after the client went away" server_has_no_children
  git ls-remote "$(url big.git)" >/dev/null || fail "server unusable after an aborted clone"
  echo "client-abort: helper and server-side git processes go away when the client dies"
}

case "$scenario" in
  roundtrip) scenario_roundtrip ;;
  non-fast-forward) scenario_non_fast_forward ;;
  hook-rejection) scenario_hook_rejection ;;
  bad-token) scenario_bad_token ;;
  ls-remote-fetch) scenario_ls_remote_fetch ;;
  hashed-path) scenario_hashed_path ;;
  bad-repository) scenario_bad_repository ;;
  client-abort) scenario_client_abort ;;
  bench-large-clone) scenario_bench_large_clone ;;
  *) fail "unknown scenario" ;;
esac
