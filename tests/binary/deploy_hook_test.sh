#!/bin/sh
# deploy_hook_test.sh HOOK: etc/certbot-deploy-hook.example installs the
# renewed files with their modes and reloads praefect, or restarts it when
# the key of the tls-key credential changed. systemctl is a stub that logs.
set -eu
hook=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/live" "$dir/credstore" "$dir/tls"
printf 'cert 1\n' > "$dir/live/fullchain.pem"
printf 'key 1\n' > "$dir/live/privkey.pem"
cat > "$dir/systemctl" <<'STUB'
#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
[ "$1" != is-active ] || [ "${STUB_INACTIVE:-}" != 1 ]
STUB
chmod +x "$dir/systemctl"
run() {
  : > "$dir/calls"
  env RENEWED_LINEAGE="$dir/live" PRAEFECT_TLS_CERT="$dir/tls/cert.pem" SYSTEMCTL="$dir/systemctl" \
    PRAEFECT_CREDSTORE="$dir/credstore" PRAEFECT_GROUP="$(id -gn)" "$@" sh "$hook"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
mode() { stat -c %a "$1"; }

run PRAEFECT_TLS_KEY="$dir/credstore/praefect.tls-key"
cmp -s "$dir/tls/cert.pem" "$dir/live/fullchain.pem" || fail "the certificate is installed"
cmp -s "$dir/credstore/praefect.tls-key" "$dir/live/privkey.pem" || fail "the key is installed"
[ "$(mode "$dir/credstore/praefect.tls-key")" = 600 ] || fail "the credential is 0600"
[ "$(mode "$dir/tls/cert.pem")" = 644 ] || fail "the certificate is 0644"
grep -qx 'restart praefect.service' "$dir/calls" || fail "a new credential restarts: $(cat "$dir/calls")"

printf 'cert 2\n' > "$dir/live/fullchain.pem"  # renewed with --reuse-key
run PRAEFECT_TLS_KEY="$dir/credstore/praefect.tls-key"
grep -q 'cert 2' "$dir/tls/cert.pem" || fail "the renewed certificate is installed"
grep -qx 'reload praefect.service' "$dir/calls" || fail "the same key reloads: $(cat "$dir/calls")"
! grep -q restart "$dir/calls" || fail "no restart for the same key"

printf 'key 2\n' > "$dir/live/privkey.pem"
run PRAEFECT_TLS_KEY="$dir/tls/key.pem"
[ "$(mode "$dir/tls/key.pem")" = 640 ] || fail "key_path is 0640"
grep -qx 'reload praefect.service' "$dir/calls" || fail "key_path reloads: $(cat "$dir/calls")"
ls "$dir/tls" | grep -q praefect-new && fail "no temporary file is left"

run PRAEFECT_TLS_KEY="$dir/tls/key.pem" STUB_INACTIVE=1
! grep -q 'reload\|restart' "$dir/calls" || fail "a stopped praefect is left stopped: $(cat "$dir/calls")"
echo "deploy hook: ok"
