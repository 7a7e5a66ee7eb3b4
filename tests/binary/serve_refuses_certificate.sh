#!/bin/sh
# serve_refuses_certificate.sh PRAEFECT: `praefect serve` exits 1 and
# `configuration validate` exits 2, both naming the file and the reason,
# for a certificate that expired, one not valid yet and a key that does not
# match. The certificates come from `openssl ca` with explicit dates (OpenSSL
# 3.0's `req -x509` cannot date one in the past), so no clock is faked.
set -eu
praefect=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
mkdir ca
: > ca/index.txt
echo 01 > ca/serial
cat > ca.cnf <<'CNF'
[ca]
default_ca = d
[d]
database = ca/index.txt
new_certs_dir = ca
serial = ca/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key 2>/dev/null
openssl req -new -key key.pem -subj /CN=praefect.example -out req.csr
issue() {  # issue NAME START END
  openssl ca -batch -config ca.cnf -selfsign -keyfile key.pem -in req.csr -startdate "$2" -enddate "$3" \
    -out "$1" >/dev/null 2>&1
}
issue expired.pem 20200101000000Z 20200601000000Z
issue future.pem 20990101000000Z 20991231000000Z
issue good.pem "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" "$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)"

fails=0
expect() {  # expect CERT KEY PATTERN
  printf 'listen_addr = "127.0.0.1:0"\ntls_listen_addr = "127.0.0.1:0"\n[tls]\ncertificate_path = "%s"\nkey_path = "%s"\n[[virtual_storage]]\nname = "default"\n[[virtual_storage.node]]\nstorage = "gitaly-1"\naddress = "tcp://127.0.0.1:1"\n' \
    "$dir/$1" "$dir/$2" > praefect.toml
  for want in "1 serve" "2 configuration validate"; do
    code=${want%% *}
    set +e
    # shellcheck disable=SC2086
    out=$(timeout 20 "$praefect" -config praefect.toml ${want#* } 2>&1)
    rc=$?
    set -e
    printf '%s\n' "$out"
    if [ "$rc" -ne "$code" ] || ! printf '%s\n' "$out" | grep -Fq -- "$3"; then
      echo "FAIL: ${want#* } with $1 and $2: exit $rc (want $code), want output containing: $3" >&2
      fails=$((fails + 1))
    fi
  done
}
expect expired.pem key.pem "tls.certificate_path \"$dir/expired.pem\": the certificate (CN=praefect.example) expired on 2020-06-01 00:00:00 UTC: clients refuse it; install a renewed certificate (and its key) and reload praefect"
expect future.pem key.pem "tls.certificate_path \"$dir/future.pem\": the certificate (CN=praefect.example) is not valid before 2099-01-01 00:00:00 UTC"
expect good.pem other.key "tls.key_path \"$dir/other.key\": the key does not match the certificate (CN=praefect.example) of tls.certificate_path \"$dir/good.pem\": configure the key the certificate was issued for"
[ "$fails" -eq 0 ]
