#!/usr/bin/env bash
# The HTTP server (issue 18, first step), with curl against a real iotd: the console's page with
# its security headers on every answer (also errors), ETag and 304, gzip, HEAD, keep-alive and
# pipelining, the head and idle timeouts, refusals (traversal plain and encoded, a symbolic link out of the root, hidden
# files, 404, 405, an oversized head 431, garbage bytes answered 400 and closed), /metrics read
# by a real Prometheus parser (python3-prometheus-client) and its allowlist (403 from another
# address), the /ws WebSocket (ws_check.py: handshake, Origin, framing), /healthz 200, then 503 while the private MariaDB is killed, then 200 again once
# iotd has restarted it; and a clean stop.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
# Debian's python3 (a python3 found first on PATH may lack the packaged Prometheus client).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# The web root: the tree's console files, plus traps.
WWW=$T_DIR/www
mkdir -p "$WWW/sub"
cp -r "$HERE/../../web/"* "$WWW/"
echo "sub index" >"$WWW/sub/index.html"
echo "a secret" >"$T_DIR/secret.txt"
ln -s "$T_DIR/secret.txt" "$WWW/escape.txt"
echo "hidden" >"$WWW/.env"

T_DEVICES="listen =
[web]
listen = 127.0.0.1:0
root = $WWW
metrics_allow = 127.0.0.1, ::1
head_timeout_ms = 1000
idle_timeout_s = 2"
t_start
expect 0 --json status
port=$(json_get 'j["web"]["port"]')
U=http://127.0.0.1:$port
echo "web on port $port"

# check WHAT COND: count a check, fail with WHAT unless COND (a shell test) holds.
check() {
    local what=$1
    shift
    T_CHECKS=$((T_CHECKS + 1))
    "$@" || fail "$what"
}
# get ARGS...: curl; headers (lower-cased names) in $HDR, body in $T_DIR/body, status in $CODE.
get() {
    rm -f "$T_DIR/body"
    CODE=$(curl -s -o "$T_DIR/body" -D "$T_DIR/headers" -w '%{http_code}' "$@") || CODE=000
    HDR=$(tr -d '\r' <"$T_DIR/headers" | sed 's/^\([^:]*\):/\L\1:/')
}
header() { sed -n "s/^$1: //p" <<<"$HDR" | head -1; }
security_headers() {
    local csp
    csp=$(header content-security-policy)
    check "$1: CSP default-src 'self' (got '$csp')" grep -q "default-src 'self'" <<<"$csp"
    check "$1: CSP frame-ancestors 'none'" grep -q "frame-ancestors 'none'" <<<"$csp"
    check "$1: CSP allows no inline script" test -z "$(grep -o "unsafe-inline\|unsafe-eval" <<<"$csp")"
    check "$1: nosniff" test "$(header x-content-type-options)" = nosniff
    check "$1: Referrer-Policy" test "$(header referrer-policy)" = no-referrer
    check "$1: Server" grep -q '^iotd/' <<<"$(header server)"
    check "$1: Date" grep -q 'GMT$' <<<"$(header date)"
}

# --- the page -----------------------------------------------------------------------------------
get "$U/"
check "GET / -> 200 (got $CODE)" test "$CODE" = 200
check "GET / is the console's page" cmp -s "$T_DIR/body" "$HERE/../../web/index.html"
check "GET / type" test "$(header content-type)" = "text/html; charset=utf-8"
check "GET / Cache-Control" test "$(header cache-control)" = no-cache
security_headers "GET /"
etag=$(header etag)
check "GET / has an ETag" test -n "$etag"
check "the page has no inline script" test -z "$(grep -E '<script>|<script [^>]*>[^<]' "$T_DIR/body")"
get "$U/console.js"
check "the module's type (got $(header content-type))" test "$(header content-type)" = "text/javascript; charset=utf-8"

get -H "If-None-Match: $etag" "$U/"
check "If-None-Match -> 304 (got $CODE)" test "$CODE" = 304
check "304 has no body" test ! -s "$T_DIR/body" -a "$(header content-length)" = ""
check "304 keeps the ETag" test "$(header etag)" = "$etag"
security_headers "304"

get -H 'Accept-Encoding: gzip' "$U/index.html"
check "gzip: Content-Encoding (got '$(header content-encoding)')" test "$(header content-encoding)" = gzip
check "gzip: Vary" test "$(header vary)" = Accept-Encoding
check "gzip: the body inflates to the page" cmp -s <(gzip -dc "$T_DIR/body") "$HERE/../../web/index.html"
check "gzip: its own ETag" test "$(header etag)" != "$etag"

get "$U/sub/"
check "a directory's index.html" grep -q "sub index" "$T_DIR/body"

# --- refusals -----------------------------------------------------------------------------------
get --path-as-is "$U/../../etc/passwd"
check "/../ -> 400 (got $CODE)" test "$CODE" = 400
security_headers "400"
get --path-as-is "$U/%2e%2e/%2e%2e/etc/passwd"
check "/%2e%2e/ -> 400 (got $CODE)" test "$CODE" = 400
get --path-as-is "$U/sub/..%2f..%2fsecret.txt"
check "encoded slash -> 400 (got $CODE)" test "$CODE" = 400
get "$U/escape.txt"
check "a link out of the root -> 404 (got $CODE)" test "$CODE" = 404
check "...without its content" test -z "$(grep secret "$T_DIR/body")"
get "$U/.env"
check "a hidden file -> 404 (got $CODE)" test "$CODE" = 404
get "$U/missing.js"
check "missing -> 404 (got $CODE)" test "$CODE" = 404
security_headers "404"
get -X DELETE "$U/"
check "DELETE -> 405 (got $CODE)" test "$CODE" = 405
check "405 says what is allowed" test "$(header allow)" = "GET, HEAD"
get -X POST "$U/healthz"
check "POST -> 405 (got $CODE)" test "$CODE" = 405
get -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$U/"
check "an oversized head -> 431 (got $CODE)" test "$CODE" = 431
get "$U/$(head -c 3000 /dev/zero | tr '\0' a)"
check "an overlong target -> 414 (got $CODE)" test "$CODE" = 414
get --http1.0 -H "Host:" "$U/"
check "HTTP/1.0 without Host is fine (got $CODE)" test "$CODE" = 200
check "HTTP/1.0 closes by default" test "$(header connection)" = close

# raw REQUEST-BYTES: write them on one connection, read until iotd closes it (bounded).
raw() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    # iotd may close before it has read everything (garbage): no SIGPIPE for the writer.
    (trap '' PIPE && printf '%b' "$1" >&3) 2>/dev/null
    RAW=$(timeout 5 cat <&3 | tr -d '\r'; echo "rc=${PIPESTATUS[0]}")
    exec 3<&-
}
raw 'HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'
check "HEAD -> 200" grep -q "^HTTP/1.1 200 OK" <<<"$RAW"
check "HEAD: the GET's length" grep -qx "Content-Length: $(stat -c %s "$HERE/../../web/index.html")" <<<"$RAW"
check "HEAD: no body" test -z "$(grep -a doctype <<<"$RAW")"
raw 'GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\nHEAD /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'
check "pipelined: three answers in order, then closed (got: $(grep -a '^HTTP' <<<"$RAW" | tr '\n' ' '))" \
    test "$(grep -a '^HTTP' <<<"$RAW" | tr '\n' ' ')" = "HTTP/1.1 200 OK HTTP/1.1 200 OK HTTP/1.1 404 Not Found "
check "pipelined: closed by iotd after Connection: close" grep -q "rc=0" <<<"$RAW"
raw "$(head -c 512 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/\(..\)/\\x\1/g')"
check "garbage: answered 400 and closed (got: $(head -1 <<<"$RAW"))" grep -q "^HTTP/1.1 400" <<<"$RAW"
check "garbage: connection closed" grep -q "rc=0" <<<"$RAW"
raw 'GET / HTTP/3.0\r\nHost: a\r\n\r\n'
check "HTTP/3.0 -> 505" grep -q "^HTTP/1.1 505" <<<"$RAW"
raw 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
check "Content-Length with Transfer-Encoding -> 400" grep -q "^HTTP/1.1 400" <<<"$RAW"
get "$U/healthz"
check "still serving after the refusals" test "$CODE" = 200

# Timeouts (head_timeout_ms = 1000, idle_timeout_s = 2): a head that stops half-way is answered
# 408 and closed; an idle keep-alive connection is closed without a word.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ' >&3
t0=$SECONDS
RAW=$(timeout 10 cat <&3 | tr -d '\r')
exec 3<&-
check "a slow head -> 408 (got: $(head -1 <<<"$RAW"))" grep -q "^HTTP/1.1 408" <<<"$RAW"
check "...within a few seconds ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 4
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n' >&3
t0=$SECONDS
RAW=$(timeout 10 cat <&3 | tr -d '\r')
exec 3<&-
check "keep-alive: answered, then closed when idle (got: $(head -1 <<<"$RAW"))" \
    test "$(grep -c '^HTTP/1.1 200' <<<"$RAW")" = 1
check "...after about idle_timeout_s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -ge 1 -a $((SECONDS - t0)) -le 5

# --- /metrics -----------------------------------------------------------------------------------
get "$U/metrics"
check "/metrics -> 200 (got $CODE)" test "$CODE" = 200
check "/metrics type" grep -q "^text/plain; version=0.0.4" <<<"$(header content-type)"
security_headers "/metrics"
T_CHECKS=$((T_CHECKS + 1))
"$PY" - "$T_DIR/body" <<'PYEOF' || fail "/metrics does not parse as Prometheus text, or lacks families"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
families = {f.name: f for f in text_string_to_metric_families(text)}
declared_help = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP ")}
declared_type = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")}
names = {s.name for f in families.values() for s in f.samples}
assert names <= declared_help and names <= declared_type, names - declared_help
for want, kind in [("iotd_uptime_seconds", "gauge"), ("iotd_connections_device", "gauge"),
                   ("iotd_outcomes", "counter"), ("iotd_queue_depth", "gauge"),
                   ("iotd_thread_cpu_seconds", "counter"), ("iotd_events_stored", "counter"),
                   ("iotd_event_state_info", "gauge"), ("iotd_version_info", "gauge"),
                   ("iotd_sessions", "gauge")]:
    assert want in families, want
    assert families[want].type == kind, (want, families[want].type)
    assert families[want].documentation, want
outcomes = {s.labels["outcome"] for s in families["iotd_outcomes"].samples}
assert {"ok", "denied", "timeout"} <= outcomes, outcomes
threads = {s.labels["name"] for s in families["iotd_thread_cpu_seconds"].samples}
assert {"main", "io0", "io1"} <= threads, threads
state = [s for s in families["iotd_event_state_info"].samples]
assert len(state) == 1 and state[0].labels["state"] == "db", state
print(f"metrics: {len(families)} families, {sum(len(f.samples) for f in families.values())} samples")
PYEOF
get --interface 127.0.0.2 "$U/metrics"
check "/metrics from an address not allowed -> 403 (got $CODE)" test "$CODE" = 403
get --interface 127.0.0.2 "$U/healthz"
check "/healthz is for everyone (got $CODE)" test "$CODE" = 200

# --- /ws -----------------------------------------------------------------------------------------
T_CHECKS=$((T_CHECKS + 1))
python3 "$HERE/ws_check.py" "$port" || fail "the WebSocket checks failed"

# --- /healthz -----------------------------------------------------------------------------------
get "$U/healthz"
check "/healthz -> 200 (got $CODE)" test "$CODE" = 200
check "/healthz says ok" test "$(cat "$T_DIR/body")" = ok
check "/healthz is not cached" test "$(header cache-control)" = no-store
db=$(pgrep -f "datadir=$T_STATE/mariadb" | head -1)
check "the private mariadbd is running" test -n "$db"
# healthz_until STATUS POLLS: ask /healthz every 0.1 s until it answers STATUS (bounded).
healthz_until() {
    for _ in $(seq 1 "$2"); do
        get "$U/healthz"
        [ "$CODE" = "$1" ] && return 0
        sleep 0.1
    done
}
kill -KILL "$db"
healthz_until 503 50
check "/healthz -> 503 once MariaDB is killed (got $CODE)" test "$CODE" = 503
check "...saying it is the database ($(cat "$T_DIR/body"))" grep -q "^database: " "$T_DIR/body"
healthz_until 200 300
check "/healthz -> 200 again once iotd has restarted MariaDB (got $CODE)" test "$CODE" = 200

t_stop
t_done
