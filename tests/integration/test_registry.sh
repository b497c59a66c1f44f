#!/usr/bin/env bash
# Every registry verb of iotctl against a real iotd + MariaDB, with its error paths:
# unknown names, duplicates, cross-tenant references, bad arguments, and exit statuses.
. "$(dirname "$0")/lib.sh"
t_start

pw=$T_DIR/pw
printf 'correct horse battery\n' >"$pw"

# --- tenants
expect 0 tenant add acme --display-name "Acme Corp"
expect 0 tenant add globex
expect 5 tenant add acme
contains exists
expect 2 tenant add "bad name"
expect 0 --json tenant list
[ "$(json_get 'sorted(t["name"] for t in j["tenants"])')" = "['acme', 'globex']" ] || fail "tenant list: $OUT"
expect 0 tenant show acme
contains "Acme Corp"
expect 3 tenant show nosuch

# --- device types and their catalogue
expect 0 type add thermo --tenant acme --description "temperature sensor"
expect 0 type add thermo --tenant globex
expect 5 type add thermo --tenant acme
expect 3 type add thermo --tenant nosuch
expect 2 type add thermo
expect 0 message add thermo read_temp --tenant acme --timeout 2000
expect 0 message add thermo set_pixel --tenant acme --args "x:int y:int color:str"
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float unit:str?"
expect 5 message add thermo read_temp --tenant acme
expect 2 message add thermo bad_spec --tenant acme --args "x:complex"
expect 2 message add thermo bad_dir --tenant acme --direction sideways
expect 3 message add nosuch read_temp --tenant acme
expect 0 --json message list thermo --tenant acme
[ "$(json_get 'sorted(m["name"] for m in j["messages"])')" = "['read_temp', 'set_pixel', 'temperature']" ] || fail "message list: $OUT"
[ "$(json_get '[m["timeout_ms"] for m in j["messages"] if m["name"]=="read_temp"][0]')" = "2000" ] || fail "timeout: $OUT"
expect 0 type show thermo --tenant acme
contains set_pixel
expect 0 message remove thermo set_pixel --tenant acme
expect 3 message remove thermo set_pixel --tenant acme
expect 0 message add thermo set_pixel --tenant acme --args "x:int y:int color:str"

# --- devices
expect 0 --json device add dev1 --tenant acme --type thermo --name "Living room"
secret=$(json_get 'j["secret"]')
[ ${#secret} -eq 64 ] || fail "device add must print a 64-hex-digit secret, got '$secret'"
expect 0 device add dev2 --tenant acme --type thermo
contains "$(echo "$OUT" | grep -oE '[0-9a-f]{64}' | head -1)"
expect 5 device add dev1 --tenant acme --type thermo
expect 5 device add dev1 --tenant globex --type thermo   # ids are global
expect 3 device add dev3 --tenant acme --type nosuch
expect 2 device add chip1 --tenant acme --type thermo --auth atecc508a          # serial required
expect 2 device add chip1 --tenant acme --type thermo --auth atecc508a --serial 0123
expect 0 device add chip1 --tenant acme --type thermo --auth atecc508a --serial 0123456789abcdef01
expect 0 device add g1 --tenant globex --type thermo
expect 0 --json device show dev1
[ "$(json_get 'j["display_name"]')" = "Living room" ] || fail "device show: $OUT"
lacks "$secret"
expect 0 --json device list --tenant acme
[ "$(json_get 'sorted(d["id"] for d in j["devices"])')" = "['chip1', 'dev1', 'dev2']" ] || fail "device list: $OUT"
lacks "$secret"
expect 0 device disable dev2
expect 0 --json device show dev2
[ "$(json_get 'j["enabled"]')" = "False" ] || fail "disable: $OUT"
expect 0 device enable dev2
expect 3 device enable nosuch
expect 0 --json device rekey dev1
new_secret=$(json_get 'j["secret"]')
[ ${#new_secret} -eq 64 ] && [ "$new_secret" != "$secret" ] || fail "rekey must give a new secret"
expect 0 device rekey dev2 --secret 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
expect 2 device rekey dev2 --secret 0001
expect 7 type remove thermo --tenant acme     # devices use it
contains in_use

# --- users
expect 0 user add alice@acme --role operator --password-file "$pw"
expect 0 user add bob@acme --role operator --password-file "$pw"   # sends: not a viewer
expect 0 user add root@acme --role admin --password-file "$pw"
expect 0 user add carol@globex --password-file "$pw"
expect 5 user add alice@acme --password-file "$pw"
expect 3 user add dave@nosuch --password-file "$pw"
expect 2 user add erin@acme --role superuser --password-file "$pw"
expect 2 user add noat --password-file "$pw"
printf 'short\n' >"$T_DIR/short"
expect 2 user add frank@acme --password-file "$T_DIR/short"
expect 2 user add frank@acme </dev/null         # no file and not a TTY: never prompts
expect 0 --json user show alice@acme
[ "$(json_get 'j["role"]')" = "operator" ] || fail "user show: $OUT"
lacks argon2
expect 0 user passwd alice@acme --password-file "$pw"
expect 3 user passwd nobody@acme --password-file "$pw"
expect 0 --json user list --tenant acme
[ "$(json_get 'len(j["users"])')" = "3" ] || fail "user list: $OUT"
lacks argon2

# --- groups
expect 0 group add ops --tenant acme --kind user
expect 0 group add sensors --tenant acme --kind device
expect 0 group add others --tenant globex --kind device
expect 5 group add ops --tenant acme --kind user
expect 2 group add mixed --tenant acme --kind things
expect 0 group member add ops bob --tenant acme
expect 0 group member add sensors dev1 --tenant acme
expect 5 group member add sensors dev1 --tenant acme
expect 3 group member add sensors nosuch --tenant acme
expect 7 group member add sensors g1 --tenant acme       # a device of globex
expect 3 group member add ops carol --tenant acme        # no such user in acme
expect 0 --json group show sensors --tenant acme
contains dev1
expect 0 group member remove sensors dev1 --tenant acme
expect 3 group member remove sensors dev1 --tenant acme
expect 0 group member add sensors dev1 --tenant acme
expect 0 group list --tenant acme
contains sensors

# --- access map
expect 0 --json access grant user:alice device:dev1 --tenant acme --message read_temp
rule_alice=$(json_get 'j["rule"]')
expect 0 access grant group:ops type:thermo --tenant acme
expect 0 access grant device:dev2 group:sensors --tenant acme --message set_pixel
expect 7 access grant user:carol@globex device:dev1 --tenant acme    # user of globex
expect 7 access grant user:alice device:g1 --tenant acme      # device of globex
expect 3 access grant user:nosuch device:dev1 --tenant acme
expect 2 access grant alice device:dev1 --tenant acme
expect 2 access grant user:alice somewhere --tenant acme
expect 0 --json access list --tenant acme
[ "$(json_get 'len(j["rules"])')" = "3" ] || fail "access list: $OUT"

expect 0 access check user:alice dev1 read_temp --tenant acme
contains allow
contains "rule $rule_alice"
expect 4 access check user:alice dev1 set_pixel --tenant acme
contains deny
expect 0 access check user:bob dev1 set_pixel --tenant acme   # via group ops -> type thermo
contains ops
expect 0 access check user:root dev1 set_pixel --tenant acme  # admin role
contains admin
expect 0 access check device:dev2 dev1 set_pixel --tenant acme
expect 4 access check user:carol dev1 read_temp --tenant globex
expect 4 access check user:alice dev1 no_such_message --tenant acme
expect 0 access revoke "$rule_alice" --tenant acme
expect 4 access check user:alice dev1 read_temp --tenant acme
expect 3 access revoke "$rule_alice" --tenant acme

# --- removal and the audit log
expect 0 device remove dev2
expect 3 device show dev2
expect 3 device remove dev2
expect 0 user remove bob@acme
expect 3 user show bob@acme
expect 0 group remove ops --tenant acme
expect 7 tenant remove globex                  # not empty
expect 0 tenant remove globex --force
expect 3 tenant show globex
expect 0 --json changes list --limit 500
[ "$(json_get 'len(j["changes"])')" = "37" ] || fail "changes list must hold the 37 changes made: $OUT"
contains tenant.remove
contains device.rekey
lacks "$new_secret"
lacks "correct horse"
# Who did it (issue 17 section 3): the peer's login name, uid and pid, not bare numbers.
[ "$(json_get 'sorted({c["actor"].split(" pid=")[0] for c in j["changes"]})')" = \
    "['$(id -un) (uid=$(id -u)']" ] || fail "changes not recorded by login name: $OUT"
expect 0 changes list --tenant acme --limit 5

# --- rows changed behind iotd's back: a change re-reads only what it touched, SIGHUP reloads all
mariadb --socket="$T_STATE/mariadb/run/mysqld.sock" -N iotd -e \
    "INSERT INTO devices (id, tenant_id, type_id, auth, secret, enabled)
     SELECT 'bysql', tenant_id, type_id, auth, secret, 1 FROM devices WHERE id = 'dev1'"
expect 0 device disable dev1
expect 3 device show bysql
kill -HUP "$T_PID"
for _ in $(seq 1 100); do
    ctl device show bysql
    [ "$RC" -eq 0 ] && break
    sleep 0.1
done
expect 0 device show bysql

expect 0 status
t_stop
t_done
