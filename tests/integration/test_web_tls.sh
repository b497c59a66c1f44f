#!/usr/bin/env bash
# The web listener over TLS and the ends of a browser session (issue 18): [web] tls_listen
# serves HTTPS (curl --cacert) and WSS with the device port's certificate; the session cookie is
# Secure over TLS; LOGIN over WSS is accepted from a non-loopback address where plain WS is
# refused; POST /api/logout closes the WebSockets of its cookie; closing with unread input loses
# no answer (ws_tls_check.py); SIGHUP reloads the certificate; `tenant remove` revokes the
# browser tokens of the tenant's users.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
HERE=$(cd "$(dirname "$0")" && pwd)

# An address of this host that is not loopback, if there is one (LOGIN from "anywhere").
external=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | grep -v '^127\.' | head -n 1)
san="DNS:localhost,IP:127.0.0.1${external:+,IP:$external}"
cert() { # cert NAME CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
        -addext "subjectAltName=$san" -keyout "$T_DIR/$1.key" -out "$T_DIR/$1.crt" >/dev/null 2>&1 ||
        fail "openssl $1"
}
cert a first
cert b second

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The web's TLS has no cert of its own: it takes [devices]'.
T_DEVICES="listen = 127.0.0.1:$port
tls_cert = $T_DIR/a.crt
tls_key = $T_DIR/a.key
[web]
listen = 0.0.0.0:0
tls_listen = 0.0.0.0:0
session_ttl_s = 600"
t_start
expect 0 --json status
web_port=$(json_get 'j["web"]["port"]')
tls_port=$(json_get 'j["web"]["tls_port"]')
[ "$tls_port" -gt 0 ] || fail "no web tls_port in status: $OUT"

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo read_temp --tenant acme
expect 0 --json device add dev1 --tenant acme --type thermo
printf '%s\n' "$OUT" >"$T_DIR/dev1.json"
printf 'tls-secret-1\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 access grant user:alice device:dev1 --tenant acme

mkdir -p "$T_DIR/sim"
"$IOTSIM_BIN" -c "127.0.0.1:$port" --duration 200 --stats-interval 0 --state-dir "$T_DIR/sim" -f "$T_DIR/dev1.json" \
    >"$T_DIR/sim.log" 2>&1 &
SIM=$!
for _ in $(seq 1 100); do
    ctl send --tenant acme dev1 read_temp
    [ "$RC" = 0 ] && break
    sleep 0.1
done
[ "$RC" = 0 ] || fail "dev1 did not come online: $OUT"

# HTTPS: the certificate verifies, the headers are the plain port's.
T_CHECKS=$((T_CHECKS + 1))
hdr=$(curl -sS --max-time 5 --cacert "$T_DIR/a.crt" -o /dev/null -D - "https://127.0.0.1:$tls_port/healthz") ||
    fail "curl over HTTPS failed"
case "$hdr" in HTTP/1.1\ 200*) ;; *) fail "GET /healthz over HTTPS: $hdr" ;; esac
T_CHECKS=$((T_CHECKS + 1))
curl -sS --max-time 5 -o /dev/null "https://127.0.0.1:$tls_port/healthz" 2>/dev/null &&
    fail "curl without the CA accepted the certificate"

T_CHECKS=$((T_CHECKS + 1))
python3 "$HERE/ws_tls_check.py" check "$tls_port" "$web_port" "$T_DIR/a.crt" alice@acme tls-secret-1 dev1 $external ||
    fail "the TLS WebSocket checks failed"

# SIGHUP: new connections get the new certificate.
cp "$T_DIR/b.crt" "$T_DIR/a.crt"
cp "$T_DIR/b.key" "$T_DIR/a.key"
kill -HUP "$T_PID"
T_CHECKS=$((T_CHECKS + 1))
subject=
for _ in $(seq 1 50); do
    subject=$(openssl s_client -connect "127.0.0.1:$tls_port" </dev/null 2>/dev/null | grep -m1 '^subject=')
    case "$subject" in *second*) break ;; esac
    sleep 0.1
done
case "$subject" in *second*) ;; *) fail "after SIGHUP the web's TLS still shows $subject" ;; esac

# tenant remove: the browser tokens of its users end with it.
expect 0 tenant add beta
printf 'beta-secret-1\n' >"$T_DIR/pw2"
expect 0 user add bob@beta --password-file "$T_DIR/pw2"
T_CHECKS=$((T_CHECKS + 1))
cookie=$(python3 "$HERE/ws_tls_check.py" cookie "$web_port" bob@beta beta-secret-1) || fail "no cookie for bob@beta"
case "$cookie" in iotd_session=*) ;; *) fail "no cookie for bob@beta: $cookie" ;; esac
expect 0 tenant remove beta --force
expect 0 tenant add beta
expect 0 user add bob@beta --password-file "$T_DIR/pw2"
T_CHECKS=$((T_CHECKS + 1))
python3 "$HERE/ws_tls_check.py" dead "$web_port" "$cookie" ||
    fail "a cookie of a removed tenant's user still logs in (the tenant and user were added again)"

kill "$SIM" 2>/dev/null
wait "$SIM" 2>/dev/null
t_stop
t_done
