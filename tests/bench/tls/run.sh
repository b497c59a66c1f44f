#!/usr/bin/env bash
# tls/run.sh - what an idle server-side TLS connection costs (ssl_idle.c, in process), for each
# way of keeping it small, over TLS 1.3 and TLS 1.2, with a P-256 certificate as
# fleet_connect.sh makes; then the server's CPU per relayed round trip with iotd's own TLS 1.3
# records against OpenSSL's (record_speed.c, paired by round). Not part of the test suite: run
# it by hand.
#
#   tests/bench/tls/run.sh [N [ROUND_TRIPS ROUNDS]]
#                           (defaults: 5000 connections per variant; 20000 round trips, 9 rounds)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-5000}
work=$(mktemp -d /tmp/iotd-tlsidle.XXXXXX)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
top=$(cd "$here/../../.." && pwd)
for prog in ssl_idle record_speed; do
    cc -std=gnu11 -O2 -Wall -Wextra -Werror -I"$top/iotd" -I"$top/firmware/include" \
        -o "$work/$prog" "$here/$prog.c" "$top/iotd/net/tls13_record.c" \
        "$top/firmware/src/iotp_hex.c" -lssl -lcrypto
done
echo "$(openssl version)"
for proto in 1.3 1.2; do
    for v in today tickets cache bios iotd all records; do
        if [ "$proto" = 1.2 ]; then
            echo "TLS $proto $(TLS12=1 "$work/ssl_idle" "$work/cert.pem" "$work/key.pem" "$n" "$v")"
        else
            echo "TLS $proto $("$work/ssl_idle" "$work/cert.pem" "$work/key.pem" "$n" "$v")"
        fi
    done
done
for v in iotd records; do
    echo "TLS 1.3 ChaCha20-Poly1305 $(CIPHERS=TLS_CHACHA20_POLY1305_SHA256 "$work/ssl_idle" \
        "$work/cert.pem" "$work/key.pem" "$n" "$v")"
done
for suite in TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
    echo "relay round trips, $suite:"
    CIPHERS=$suite "$work/record_speed" "$work/cert.pem" "$work/key.pem" "${2:-20000}" "${3:-9}"
done
