#!/usr/bin/env bash
# iotd -t (issue 19): everything start-up would trip over is found without starting, each error
# naming the file and line (what one line gets wrong) or the key (what the check finds), in
# words; a valid configuration passes. Needs no database: nothing is started.
. "$(dirname "$0")/lib.sh"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=a \
    -keyout "$T_DIR/a.key" -out "$T_DIR/a.crt" >/dev/null 2>&1 || fail "openssl a"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=b \
    -keyout "$T_DIR/b.key" -out "$T_DIR/b.crt" >/dev/null 2>&1 || fail "openssl b"
echo "not a certificate" >"$T_DIR/junk.pem"

# check WANT_STATUS WANT_TEXT [iotd args...] -- CONFIG LINES: runs iotd -t on a file holding
# [iotd] state_dir and the given lines.
check() {
    local want=$1 text=$2
    shift 2
    local args=()
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    shift
    printf '[iotd]\nstate_dir = %s\n' "$T_STATE" >"$T_DIR/t.conf"
    printf '%s\n' "$@" >>"$T_DIR/t.conf"
    local rc=0
    OUT=$("$IOTD_BIN" -t -c "$T_DIR/t.conf" "${args[@]}" 2>&1) || rc=$?
    T_CHECKS=$((T_CHECKS + 1))
    [ "$rc" -eq "$want" ] || fail "iotd -t ($*) exited $rc, want $want: $OUT"
    case "$OUT" in *"$text"*) ;; *) fail "iotd -t ($*) says '$OUT', want '$text'" ;; esac
}

check 0 "configuration OK" -- "[devices]" "listen = 127.0.0.1:7800"
check 2 "t.conf:4: [devices] listen: expected host:port" -- "[devices]" "listen = 127.0.0.1:99999"
check 2 "t.conf:4: [devices] listen: expected host:port" -- "[devices]" "listen = 7800"
check 2 "t.conf:3: [iotd] log_level: expected error|warn|info|debug, got 'loud'" -- "log_level = loud"
check 2 "t.conf:4: [devices] ping_s: expected a number from 1 to 3600" -- "[devices]" "ping_s = 0"
check 2 "[devices] listen: host 'no-such-host.invalid' does not resolve" -- \
    "[devices]" "listen = no-such-host.invalid:7800"
check 0 "configuration OK" -- "[devices]" "listen =" "tls_listen = 127.0.0.1:7801" \
    "tls_cert = $T_DIR/a.crt" "tls_key = $T_DIR/a.key"
check 2 "does not match the certificate" -- "[devices]" "tls_listen = 127.0.0.1:7801" \
    "tls_cert = $T_DIR/a.crt" "tls_key = $T_DIR/b.key"
check 2 "certificate $T_DIR/missing.crt: No such file or directory" -- "[devices]" \
    "tls_listen = 127.0.0.1:7801" "tls_cert = $T_DIR/missing.crt" "tls_key = $T_DIR/a.key"
check 2 "cannot load the certificate chain $T_DIR/junk.pem: no start line" -- "[devices]" \
    "tls_listen = 127.0.0.1:7801" "tls_cert = $T_DIR/junk.pem" "tls_key = $T_DIR/a.key"
check 2 "certificate $T_DIR: not a regular file" -- "[devices]" \
    "tls_listen = 127.0.0.1:7801" "tls_cert = $T_DIR" "tls_key = $T_DIR/a.key"
# [web] tls_listen: its own cert and key, or [devices]'; checked like the device port's.
check 0 "configuration OK" -- "[web]" "tls_listen = 127.0.0.1:8443" "root = $T_DIR" \
    "tls_cert = $T_DIR/a.crt" "tls_key = $T_DIR/a.key"
check 0 "configuration OK" -- "[devices]" "tls_cert = $T_DIR/a.crt" "tls_key = $T_DIR/a.key" \
    "[web]" "tls_listen = 127.0.0.1:8443" "root = $T_DIR"
check 2 "[web] tls_listen needs tls_cert and tls_key" -- "[web]" "tls_listen = 127.0.0.1:8443"
check 2 "[web] tls_cert/tls_key: the private key does not match the certificate" -- "[web]" \
    "tls_listen = 127.0.0.1:8443" "tls_cert = $T_DIR/a.crt" "tls_key = $T_DIR/b.key"
check 2 "[web] tls_cert/tls_key: certificate $T_DIR/missing.crt: No such file or directory" -- \
    "[web]" "tls_listen = 127.0.0.1:8443" "tls_cert = $T_DIR/missing.crt" "tls_key = $T_DIR/a.key"
check 2 "[web] tls_listen: host 'no-such-host.invalid' does not resolve" -- "[web]" \
    "tls_listen = no-such-host.invalid:8443" "tls_cert = $T_DIR/a.crt" "tls_key = $T_DIR/a.key"
check 2 "[database] url:" -- "[database]" "url = postgres://x@y/z"
check 2 "[web] root $T_DIR/nosuch: No such file or directory" -- "[web]" \
    "listen = 127.0.0.1:8080" "root = $T_DIR/nosuch"
check 2 "-l: [iotd] log_level: expected error|warn|info|debug, got 'loud'" -l loud -- ""
check 0 "configuration OK" -l debug -- ""

# Every number of [devices], [events] and [web] takes exactly the range iotd.conf(5) gives it:
# both ends accepted, one past either end refused with the range in the message (0 is never a
# silent "default" where the page gives no meaning to it).
while read -r section key low high; do
    check 0 "configuration OK" -- "[$section]" "$key = $low"
    check 0 "configuration OK" -- "[$section]" "$key = $high"
    check 2 "[$section] $key: expected a number from $low to $high" -- "[$section]" \
        "$key = $((high + 1))"
    [ "$low" -eq 0 ] ||
        check 2 "[$section] $key: expected a number from $low to $high" -- "[$section]" \
            "$key = $((low - 1))"
done <<'RANGES'
devices handshake_timeout_ms 100 600000
devices ping_s 1 3600
devices max_frame 256 65536
devices max_bad_frames 1 65535
devices output_limit 1 1073741824
devices auth_fail_limit 1 100000
devices max_in_flight 1 65535
devices max_timeout_ms 1 3600000
events retention_days 0 36500
events spool_max_mb 1 1048576
events queue 1 16777216
events batch_max 1 100000
events flush_ms 1 10000
events subscriber_backlog_kb 1 1048576
events lease_max_s 1 604800
web head_timeout_ms 100 600000
web idle_timeout_s 1 86400
web session_ttl_s 1 31536000
RANGES
# keepalive_timeout_s: 0 is 2.5 x ping_s; at most 36000, and longer than ping_s.
check 0 "configuration OK" -- "[devices]" "keepalive_timeout_s = 0"
check 2 "[devices] keepalive_timeout_s: expected a number from 0 to 36000" -- "[devices]" \
    "keepalive_timeout_s = 36001"
check 2 "keepalive_timeout_s must be longer than ping_s" -- "[devices]" "ping_s = 60" \
    "keepalive_timeout_s = 60"

# The file itself: a directory, a NUL byte.
rc=0
OUT=$("$IOTD_BIN" -t -c "$T_DIR" 2>&1) || rc=$?
T_CHECKS=$((T_CHECKS + 1))
[ $rc -eq 2 ] && [[ "$OUT" == *"not a regular file"* ]] || fail "a directory as the file: $rc $OUT"
printf '[iotd]\nthreads = 2\x00\n' >"$T_DIR/nul.conf"
rc=0
OUT=$("$IOTD_BIN" -t -c "$T_DIR/nul.conf" 2>&1) || rc=$?
T_CHECKS=$((T_CHECKS + 1))
[ $rc -eq 2 ] && [[ "$OUT" == *"nul.conf:2: a NUL byte"* ]] || fail "a NUL byte: $rc $OUT"
t_done
