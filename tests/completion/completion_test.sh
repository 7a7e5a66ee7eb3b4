#!/usr/bin/env bash
# The bash completion of praefect (completions/praefect.bash) under real bash
# and Debian's bash-completion: subcommands, global and per-subcommand flags
# in both spellings, file names, and the virtual storage and storage names
# of a configuration; and that bash-completion's loader finds it under its
# installed name.
#
#   completion_test.sh SOURCE_DIR
set -o pipefail

src=$(cd "$1" && pwd) || exit 1
# shellcheck source=tests/completion/harness.sh
. "$src/tests/completion/harness.sh"
load_completion "$src/completions/praefect.bash"

tmp=$(mktemp -d /tmp/praefect-completion-test-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

checks=0
# expect LINE COMPLETION...: LINE completes to exactly these (any order).
expect() {
  local line=$1 got want
  shift
  got=$(complete_line "$line")
  want=$(if [ $# -gt 0 ]; then printf '%s\n' "$@" | LC_ALL=C sort; fi)
  [ "$got" = "$want" ] || fail "\"$line<TAB>\" offers:
${got:-(nothing)}
expected:
${want:-(nothing)}"
  checks=$((checks + 1))
}

# The subcommands; reconcile, removed from Praefect, is not offered.
expect "praefect " serve configuration dial-nodes sql-ping sql-migrate sql-migrate-status sql-migrate-down \
  replication-backlog set-replication-factor dataloss accept-dataloss list-storages metadata remove-repository \
  track-repository track-repositories list-untracked-repositories check verify maintenance version
expect "praefect dat" dataloss
expect "praefect -config x maintenance -" -content-budget -content-max -wait -untracked-older-than -help
expect "praefect -config x sql-migrate-" sql-migrate-status sql-migrate-down
expect "praefect track-repositor" track-repository track-repositories
expect "praefect recon"

# Global flags, -x and --x.
expect "praefect -" -config -version -help
expect "praefect --" --config --version --help
expect "praefect --v" --version
expect "praefect -config x -" -config -version -help

# Subcommand flags, after -config FILE in any spelling.
expect "praefect -config x dataloss -" -virtual-storage -partially-unavailable -help
expect "praefect --config=x dataloss --p" --partially-unavailable
expect "praefect -config=x dataloss -partially-unavailable -v" -virtual-storage
expect "praefect remove-repository -" -virtual-storage -relative-path -repository -apply -db-only -help
expect "praefect remove-repository " -virtual-storage -relative-path -repository -apply -db-only -help
expect "praefect -config x accept-dataloss --a" --authoritative-storage
expect "praefect track-repository -rep" -replica-path -replicate-immediately -repository
expect "praefect check -" -q -help
expect "praefect sql-migrate -" -ignore-unknown -verbose
expect "praefect sql-migrate-down -" -f
expect "praefect dial-nodes --" --timeout
expect "praefect list-untracked-repositories -" -older-than -delimiter -help
expect "praefect serve -"
expect "praefect version -"
expect "praefect reconcile -"
expect "praefect configuration " validate
expect "praefect -config x configuration validate -" -skip-unreadable-credentials
expect "praefect configuration frobnicate -"

# Values that cannot be listed: nothing, not the flags.
expect "praefect remove-repository -relative-path "
expect "praefect metadata -repository-id "
expect "praefect set-replication-factor -replication-factor "
expect "praefect dial-nodes -timeout "
# A flag the subcommand does not have takes no value: the flags again.
expect "praefect list-storages -relative-path " -virtual-storage -help

# File names after -config and -input-path.
mkdir "$tmp/files" "$tmp/files/config.d"
touch "$tmp/files/config.toml" "$tmp/files/config-test.toml" "$tmp/files/repos.jsonl" "$tmp/files/other"
expect "praefect -config $tmp/files/con" "$tmp/files/config-test.toml" "$tmp/files/config.d" "$tmp/files/config.toml"
expect "praefect --config=$tmp/files/config." "$tmp/files/config.d" "$tmp/files/config.toml"
expect "praefect -config=$tmp/files/o" "$tmp/files/other"
expect "praefect -config x track-repositories -input-path $tmp/files/r" "$tmp/files/repos.jsonl"
expect "praefect track-repositories --input-path=$tmp/files/re" "$tmp/files/repos.jsonl"

# Names from the configuration: -config FILE, else /etc/praefect/config.toml.
example=$src/etc/config.toml.example
expect "praefect -config $example dataloss -virtual-storage " default
expect "praefect --config=$example list-storages --virtual-storage=d" default
expect "praefect -config $example accept-dataloss -authoritative-storage " gitaly-1 gitaly-2 gitaly-3
expect "praefect -config $example verify -storage gitaly-" gitaly-1 gitaly-2 gitaly-3
cat >"$tmp/two.toml" <<'TOML'
listen_addr = "127.0.0.1:2305"
[[virtual_storage]] # GitLab's default storage
name = "default"
[[virtual_storage.node]]
  storage = "gitaly-1"
  address = "tcp://gitaly-1:8075"
[[virtual_storage.node]]
  name = 'gitaly-2'
  address = "tcp://gitaly-2:8075"
[[virtual_storage]]
name = "archive"
[[virtual_storage.node]]
  storage = "gitaly-1"
  address = "tcp://gitaly-1:8075"
[[virtual_storage.node]]
  storage = "archive-1"
  address = "tcp://archive-1:8075"
[database]
host = "db"
name = "not-a-storage"
TOML
expect "praefect -config $tmp/two.toml dataloss -virtual-storage " default archive
expect "praefect -config $tmp/two.toml track-repository -authoritative-storage " gitaly-1 gitaly-2 archive-1
# The 2019 spelling praefect reads when there is no [[virtual_storage]].
cat >"$tmp/legacy.toml" <<'TOML'
virtual_storage_name = "legacy"
[[node]]
  name = "old-1"
[[node]]
  storage = "old-2"
TOML
expect "praefect -config $tmp/legacy.toml metadata -virtual-storage " legacy
expect "praefect -config $tmp/legacy.toml verify -storage " old-1 old-2
# ~/ as the shell would expand it.
mkdir "$tmp/home"
cp "$tmp/two.toml" "$tmp/home/praefect.toml"
HOME=$tmp/home expect "praefect -config ~/praefect.toml dataloss -virtual-storage a" archive
# A file that cannot be read or parsed: nothing, and no error.
expect "praefect -config $tmp/missing.toml dataloss -virtual-storage "
expect "praefect -config $tmp/files dataloss -virtual-storage "
printf '[[virtual_storage\nname = "unterminated\n' >"$tmp/broken.toml"
expect "praefect -config $tmp/broken.toml dataloss -virtual-storage "

# Installed as share/bash-completion/completions/praefect, bash-completion's
# loader finds it when praefect is first completed.
mkdir -p "$tmp/share/bash-completion/completions"
cp "$src/completions/praefect.bash" "$tmp/share/bash-completion/completions/praefect"
loader=$(
  complete -r praefect
  unset -f _praefect
  XDG_DATA_DIRS=$tmp/share BASH_COMPLETION_USER_DIR=$tmp/nonexistent __load_completion praefect &&
    complete -p praefect
)
[ "$loader" = "complete -F _praefect praefect" ] ||
  fail "bash-completion's loader to load $tmp/share/bash-completion/completions/praefect, got: $loader"
checks=$((checks + 1))

echo "PASS: $checks completion checks"
