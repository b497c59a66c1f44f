#!/usr/bin/env bash
# Provisioning fleets (issue 19): iotctl device import reads CSV (a header naming its
# columns, a tenant column instead of --tenant) and JSON lines, in batches of 500 applied in
# one transaction each; a re-run adds nothing and counts the skipped devices; a bad row fails
# its batch with its line number and nothing of that batch applied; the new secrets go to a
# new 0600 file (never over an existing one) that iotsim -f reads to connect; device export
# writes the registry (never a secret) in a form import reads back identically.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')
count() { ctl --json device list --tenant "$1" --limit 10000; json_get 'len(j["devices"])'; }

expect 0 tenant add acme
expect 0 tenant add globex
expect 0 type add thermo --tenant acme
expect 0 type add pump --tenant acme
expect 0 type add thermo --tenant globex
expect 0 message add thermo echo --tenant acme --args "text:str"
expect 0 group add floor1 --tenant acme --kind device
expect 0 group add floor2 --tenant acme --kind device
expect 0 group add ops --tenant acme --kind user

# ---- CSV: 1,203 rows (three batches), columns in any order, quoted fields, groups
{
    echo 'type,id,name,groups,auth,serial'
    echo 'thermo,t-0001,"Kitchen, north",floor1;floor2,,'
    echo 'pump,p-0001,"Pump ""A""",,atecc508a,0123456789abcdef01'
    for i in $(seq 2 1202); do printf 'thermo,t-%04d,,floor1,hmac,\n' "$i"; done
} >"$T_DIR/fleet.csv"
expect 0 device import "$T_DIR/fleet.csv" --tenant acme --secrets-out "$T_DIR/secrets.jsonl"
contains "1203 added, 0 skipped"
contains "in 3 batches"
[ "$(count acme)" = 1203 ] || fail "acme has $(count acme) devices after the import"
[ "$(stat -c %a "$T_DIR/secrets.jsonl")" = 600 ] || fail "secrets file mode $(stat -c %a "$T_DIR/secrets.jsonl")"
[ "$(wc -l <"$T_DIR/secrets.jsonl")" = 1203 ] || fail "secrets file lines"
python3 - "$T_DIR/secrets.jsonl" <<'PY' || fail "secrets file content"
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert all(re.fullmatch(r"[0-9a-f]{64}", r["secret"]) for r in rows)
by = {r["id"]: r for r in rows}
assert by["p-0001"]["auth"] == "atecc508a" and by["p-0001"]["serial"] == "0123456789abcdef01", by["p-0001"]
assert by["t-0001"]["type"] == "thermo" and by["t-0001"]["tenant"] == "acme"
assert len(set(r["secret"] for r in rows)) == len(rows)
PY
expect 0 --json device show t-0001
[ "$(json_get 'j["display_name"]')" = "Kitchen, north" ] || fail "quoted name: $OUT"
[ "$(json_get '",".join(j["groups"])')" = "floor1,floor2" ] || fail "groups: $OUT"
expect 0 --json device show p-0001
[ "$(json_get 'j["display_name"] + " " + j["serial"]')" = 'Pump "A" 0123456789abcdef01' ] || fail "p-0001: $OUT"
expect 0 --json device list --tenant acme --group floor1 --limit 10000
[ "$(json_get 'len(j["devices"])')" = 1202 ] || fail "floor1 members"

# The secrets file is what iotsim -f reads: a device connects with its imported secret.
head -n 3 "$T_DIR/secrets.jsonl" | grep -v '"p-0001"' >"$T_DIR/two.jsonl"
"$IOTSIM_BIN" -c "$addr" --stats-interval 0 -f "$T_DIR/two.jsonl" --duration 60 >"$T_DIR/sim.log" 2>&1 &
sim=$!
for _ in $(seq 1 100); do
    ctl send --tenant acme t-0001 echo hello
    [ "$RC" = 0 ] && break
    sleep 0.1
done
T_CHECKS=$((T_CHECKS + 1))
[ "$RC" = 0 ] || fail "t-0001 with its imported secret: $OUT; $(cat "$T_DIR/sim.log")"
contains hello
kill -INT "$sim"
wait "$sim" 2>/dev/null

# ---- re-run: idempotent, nothing added; an existing secrets file is never overwritten
expect 0 device import "$T_DIR/fleet.csv" --tenant acme --secrets-out "$T_DIR/secrets2.jsonl"
contains "0 added, 1203 skipped"
[ ! -s "$T_DIR/secrets2.jsonl" ] || fail "a re-run wrote secrets"
expect 5 device import "$T_DIR/fleet.csv" --tenant acme --secrets-out "$T_DIR/secrets.jsonl"
contains "exists already"
[ "$(wc -l <"$T_DIR/secrets.jsonl")" = 1203 ] || fail "the secrets file was touched"

# ---- a bad row: its line, and nothing of its batch (the second) applied
{
    echo 'id,type,tenant'
    for i in $(seq 1 600); do printf 'b-%04d,thermo,globex\n' "$i"; done
    echo 'b-bad,nosuchtype,globex'
    for i in $(seq 601 700); do printf 'b-%04d,thermo,globex\n' "$i"; done
} >"$T_DIR/bad.csv"
expect 2 device import "$T_DIR/bad.csv" --secrets-out "$T_DIR/bad-secrets.jsonl"
contains "line 602"
contains "nosuchtype"
contains "nothing of this batch was applied"
contains "500 added"
[ "$(count globex)" = 500 ] || fail "globex has $(count globex), want the first batch's 500"
[ "$(wc -l <"$T_DIR/bad-secrets.jsonl")" = 500 ] || fail "the first batch's secrets are not all there"
# A device that exists with other attributes, a repeated id, a bad serial: each its own line.
printf 'id,type\nt-0001,pump\n' >"$T_DIR/differs.csv"
expect 2 device import "$T_DIR/differs.csv" --tenant acme
contains "line 2: device t-0001 already exists"
printf 'id,type\nx1,thermo\nx1,thermo\n' >"$T_DIR/twice.csv"
expect 2 device import "$T_DIR/twice.csv" --tenant acme
contains "line 3: device x1 is also on line 2"
printf 'id,type,auth,serial\nx2,thermo,atecc508a,abc\n' >"$T_DIR/serial.csv"
expect 2 device import "$T_DIR/serial.csv" --tenant acme
contains "line 2: serial must be exactly 9 bytes"
expect 3 device show x1
# The file's own faults, before anything is sent.
printf 'id,type,colour\nx3,thermo,red\n' >"$T_DIR/column.csv"
expect 2 device import "$T_DIR/column.csv" --tenant acme
contains "column.csv:1: unknown column 'colour'"
printf 'id,type\nx4,thermo,extra\n' >"$T_DIR/fields.csv"
expect 2 device import "$T_DIR/fields.csv" --tenant acme
contains "fields.csv:2: 3 fields where the header names 2"
printf 'id,type\nx5\n' >"$T_DIR/missing.csv"
expect 2 device import "$T_DIR/missing.csv"
expect 3 device show x5

# ---- JSON lines, the tenant per row or from --tenant, groups as a list
{
    echo '{"id": "j-1", "type": "thermo", "name": "J one", "groups": ["floor2"]}'
    echo ''
    echo '{"id": "j-2", "type": "thermo", "tenant": "globex"}'
} >"$T_DIR/fleet.jsonl"
expect 0 device import "$T_DIR/fleet.jsonl" --tenant acme --secrets-out "$T_DIR/j.jsonl"
contains "2 added, 0 skipped"
expect 0 --json device show j-2
[ "$(json_get 'j["tenant"]')" = globex ] || fail "j-2 tenant: $OUT"
expect 0 --json device show j-1
[ "$(json_get '",".join(j["groups"])')" = floor2 ] || fail "j-1 groups: $OUT"
printf '{"id": "j-3", "type": "thermo"}\nnot json\n' >"$T_DIR/broken.jsonl"
expect 2 device import "$T_DIR/broken.jsonl" --tenant acme
contains "broken.jsonl:2: not a JSON object"
expect 3 device show j-3
# Without --secrets-out the secrets are JSON lines on standard output, the summary on stderr.
printf '{"id": "j-4", "type": "pump"}\n' >"$T_DIR/one.jsonl"
secret_line=$("$IOTCTL_BIN" -s "$T_SOCK" device import "$T_DIR/one.jsonl" --tenant acme 2>"$T_DIR/err")
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["id"]=="j-4" and len(r["secret"])==64' \
    "$secret_line" || fail "secret on stdout: $secret_line"
grep -q "1 added" "$T_DIR/err" || fail "summary on stderr: $(cat "$T_DIR/err")"

# ---- export: never a secret, CSV and JSON lines, re-importable with nothing changed
expect 0 device export --tenant acme
printf '%s\n' "$OUT" >"$T_DIR/export.csv"
lacks secret
[ "$(head -n 1 "$T_DIR/export.csv" | tr -d '\r')" = "id,type,name,groups,auth,serial,tenant" ] || fail "export header"
[ "$(($(wc -l <"$T_DIR/export.csv") - 1))" = "$(count acme)" ] || fail "export rows"
grep -q '^t-0001,thermo,"Kitchen, north",floor1;floor2,hmac,,acme' "$T_DIR/export.csv" || fail "t-0001 row"
expect 0 device import "$T_DIR/export.csv" --secrets-out "$T_DIR/none.jsonl"
contains "0 added, $(count acme) skipped"
expect 0 device export --format jsonl
printf '%s\n' "$OUT" >"$T_DIR/export.jsonl"
lacks secret
[ "$(wc -l <"$T_DIR/export.jsonl")" = $(($(count acme) + $(count globex))) ] || fail "export jsonl rows"
expect 0 device import "$T_DIR/export.jsonl" --secrets-out "$T_DIR/none2.jsonl"
contains " 0 added"
# Round trip into a fresh registry gives the same export.
expect 0 device remove j-1
expect 0 device import "$T_DIR/export.jsonl" --secrets-out "$T_DIR/j1.jsonl"
contains "1 added"
expect 0 device export --format jsonl
[ "$OUT" = "$(cat "$T_DIR/export.jsonl")" ] || fail "export after re-import differs"
expect 2 device export --format xml
t_done
