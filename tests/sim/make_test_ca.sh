#!/bin/sh
# Make a throwaway test CA and a server certificate for 127.0.0.1 and localhost.
#
# Usage: make_test_ca.sh DIR [CLIENT_NAME...]
# Writes into DIR (created if missing):
#   ca.pem, ca.key            the CA certificate and key (clients trust ca.pem)
#   server.pem, server.key    the server certificate (SAN: 127.0.0.1, ::1, localhost) and key
#   NAME.pem, NAME.key        one client certificate per CLIENT_NAME (RSA 2048), e.g. for a
#                             Graph app's certificate credential or TLS client authentication
# Keys are RSA 2048 and unencrypted: for tests on loopback only. Certificates are valid for 2 days.
set -eu

if [ $# -lt 1 ]; then
	echo "usage: $0 DIR [CLIENT_NAME...]" >&2
	exit 2
fi
dir=$1
shift
mkdir -p "$dir"
cd "$dir"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
	-keyout ca.key -out ca.pem -subj "/CN=clawback test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
	-subj "/CN=localhost" 2>/dev/null
cat > server.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-days 2 -sha256 -extfile server.ext -out server.pem 2>/dev/null

for name in "$@"; do
	case $name in
	*/* | .* | "") echo "$0: invalid client name: $name" >&2; exit 2 ;;
	esac
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
		-keyout "$name.key" -out "$name.pem" -subj "/CN=$name" 2>/dev/null
done

rm -f server.csr server.ext ca.srl
chmod 600 ./*.key
