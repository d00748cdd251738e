#!/usr/bin/env bash
# Makes a certificate authority and one node certificate it signs, for TLS on a local or
# test cluster (`kv server --tls-cert node.pem --tls-key node-key.pem --tls-ca ca.pem`):
#
#   scripts/make-dev-certs.sh DIR [NAME_OR_IP ...]
#
# The node certificate names 127.0.0.1, ::1 and localhost, plus any names or IP
# addresses given (every node's address host must be among them, since peers check it).
# Valid for 100 years: for development and tests only; a deployment uses its own CA.
# Needs openssl. kv-server/tests/tls holds the output of one run (its tests use it).
set -euo pipefail
dir=${1:?usage: make-dev-certs.sh DIR [NAME_OR_IP ...]}
shift
mkdir -p "$dir"
names="IP:127.0.0.1,IP:::1,DNS:localhost"
for name in "$@"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then names+=",IP:$name"; else names+=",DNS:$name"; fi
done
days=36500
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=kv dev CA" -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kv node" \
    -keyout "$dir/node-key.pem" -out "$dir/node.csr" 2>/dev/null
openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -days "$days" -out "$dir/node.pem" \
    -extfile <(printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$names") 2>/dev/null
rm -f "$dir/node.csr" "$dir/ca.srl"
echo "made $dir/ca.pem, $dir/node.pem, $dir/node-key.pem (names: $names)"
