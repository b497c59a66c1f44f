#!/usr/bin/env bash
# Stalled TLS handshakes honour handshake_timeout_ms (issue 17): a TCP client that connects to
# the TLS port and sends nothing, and one that sends half a ClientHello, are closed within
# handshake_timeout_ms plus a margin (they were closed after the 10 s default), like a silent
# peer on the plain port; a real TLS device still authenticates.
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$T_DIR/key.pem" -out "$T_DIR/cert.pem" 2>/dev/null || fail "cannot make a test certificate"
T_DEVICES="listen = 127.0.0.1:0
tls_listen = 127.0.0.1:0
tls_cert = $T_DIR/cert.pem
tls_key = $T_DIR/key.pem
handshake_timeout_ms = 1000"
t_start
expect 0 --json status
port=$(json_get 'j["devices"]["port"]')
tls_port=$(json_get 'j["devices"]["tls_port"]')

# stalled PORT SEND_HEX: seconds until the server closes a connection that sent SEND_HEX.
stalled() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
start = time.time()
if sys.argv[2]:
    s.sendall(bytes.fromhex(sys.argv[2]))
try:
    while s.recv(4096):
        pass
except (ConnectionResetError, socket.timeout):
    pass
print(f"{time.time() - start:.2f}")
PY
}
# A TLS record header announcing a 512-byte ClientHello, then only its first bytes.
half_hello=160301020001000200fc0303$(printf '%064d' 0)
for case in "tls silent:$tls_port:" "tls half-ClientHello:$tls_port:$half_hello" "tcp silent:$port:"; do
    IFS=: read -r what p data <<<"$case"
    t=$(stalled "$p" "$data")
    T_CHECKS=$((T_CHECKS + 1))
    python3 -c "import sys; t = float(sys.argv[1]); sys.exit(not 0.8 <= t <= 2.5)" "$t" ||
        fail "$what: closed after $t s with handshake_timeout_ms = 1000"
    echo "$what: closed after $t s"
done

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 --json device add d1 --tenant acme --type thermo
k1=$(json_get 'j["secret"]')
$client "127.0.0.1:$tls_port" --tls "$T_DIR/cert.pem" auth d1 thermo "$k1" || fail "TLS handshake"
t_stop
t_done
