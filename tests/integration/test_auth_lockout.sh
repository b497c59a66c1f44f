#!/usr/bin/env bash
# Authentication failures are limited by (address, id) first (issue 17 §4): wrong MACs or
# passwords for an id from one address do not lock the right key out at another address;
# the address that failed stays blocked; a flood of one id from many addresses blocks the id
# everywhere but where it last authenticated, also after a restart.
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0
auth_fail_limit = 3"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
key() { expect 0 --json device add "$@"; json_get 'j["secret"]'; }
k1=$(key dev1 --tenant acme --type thermo)
k2=$(key dev2 --tenant acme --type thermo)
wrong=$(printf '%064d' 0)
printf 'pw-alice\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"

# Five wrong MACs for dev1 from 127.0.0.2: past the limit, that address is refused even
# the right key...
$client "$addr" --from 127.0.0.2 refused-n 5 dev1 thermo "$wrong" || fail "wrong MACs from .2"
$client "$addr" --from 127.0.0.2 refused dev1 thermo "$k1" || fail "127.0.0.2 not blocked for dev1"
# ...but dev1 at its own address is not locked out.
$client "$addr" auth dev1 thermo "$k1" || fail "dev1 locked out by another address's failures"

# The same for LOGIN.
for _ in 1 2 3 4; do
    $client "$addr" --from 127.0.0.2 login-fail alice@acme wrong >/dev/null || fail "wrong password"
done
$client "$addr" --from 127.0.0.2 login-fail alice@acme pw-alice >/dev/null \
    || fail "127.0.0.2 not blocked for alice"
$client "$addr" login-ok alice@acme pw-alice || fail "alice locked out by another address's failures"

# The per-id limit (20 x 3 failures a minute from anywhere) spares the address dev2 last
# authenticated from, and only that.
$client "$addr" auth dev2 thermo "$k2" || fail "dev2 first handshake"
for i in $(seq 10 29); do
    $client "$addr" --from 127.0.0.$i refused-n 3 dev2 thermo "$wrong" >/dev/null \
        || fail "wrong MACs for dev2 from 127.0.0.$i"
done
$client "$addr" --from 127.0.0.99 refused dev2 thermo "$k2" || fail "dev2 not blocked elsewhere"
$client "$addr" auth dev2 thermo "$k2" || fail "dev2 refused at its usual address"

expect 0 --json status
[ "$(json_get 'j["devices"]["rate_limited"] >= 3')" = "True" ] || fail "rate_limited: $OUT"

# A restart forgets the failures but not where devices last authenticated (the database's
# last_address): a flood of dev1's id right after it still spares dev1 at its usual address.
t_stop
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')
for i in $(seq 30 49); do
    $client "$addr" --from 127.0.0.$i refused-n 3 dev1 thermo "$wrong" >/dev/null \
        || fail "wrong MACs for dev1 from 127.0.0.$i after the restart"
done
$client "$addr" --from 127.0.0.98 refused dev1 thermo "$k1" || fail "dev1 not blocked elsewhere"
$client "$addr" auth dev1 thermo "$k1" || fail "dev1 refused at its usual address after a restart"
t_stop
t_done
