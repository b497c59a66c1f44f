#!/usr/bin/env bash
# Paging (issue 19): every list (events, audit, device list, alarm list, changes list) pages
# with a keyset cursor. --limit N gives N rows and says more follow (a note on stderr in text
# mode, "next" in JSON); --after continues; --all prints every row, page after page, with one
# header. Following "next" page by page gives exactly the rows of one big page, in the same
# order, none twice, also across rows that tie on time. device list filters by --online,
# --offline, --group and --type; alarm list works without --tenant. Bad cursors and limits
# are usage errors.
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')
sql() { mariadb --socket="$T_STATE/mariadb/run/mysqld.sock" -N -e "$1" iotd; }

expect 0 tenant add acme
expect 0 tenant add globex
expect 0 type add thermo --tenant acme
expect 0 type add pump --tenant acme
expect 0 type add thermo --tenant globex
expect 0 group add ops --tenant acme --kind device
for i in $(seq -w 0 24); do
    expect 0 device add "d$i" --tenant acme --type thermo
done
expect 0 device add p1 --tenant acme --type pump
expect 0 device add g1 --tenant globex --type thermo
for i in 03 05 07; do expect 0 group member add ops "d$i" --tenant acme; done
expect 0 --json device add live --tenant acme --type thermo
live_key=$(json_get 'j["secret"]')

# pages CMD...: follow "next" with --limit 7 and print the rows' keys in order; all KEY CMD...:
# the same rows from one page of 10000. Both as one JSON list on stdout.
pages() {
    local key=$1
    shift
    python3 - "$IOTCTL_BIN" "$T_SOCK" "$key" "$@" <<'PY'
import json, subprocess, sys
ctl, sock, key, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows, after, calls = [], None, 0
while calls < 1000:
    calls += 1
    cmd = [ctl, "-s", sock, "--json"] + args + ["--limit", "7"] + (["--after", after] if after else [])
    page = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    lst = next(v for k, v in page.items() if isinstance(v, list))
    assert len(lst) <= 7, "a page longer than --limit"
    assert "next" not in page or len(lst) == 7, "next on a short page"
    rows += [r[key] if key != "*" else json.dumps(r, sort_keys=True) for r in lst]
    after = page.get("next")
    if not after:
        break
print(json.dumps({"rows": rows, "calls": calls}))
PY
}
one_page() {
    local key=$1
    shift
    "$IOTCTL_BIN" -s "$T_SOCK" --json "$@" --limit 10000 | python3 -c '
import json, sys
page = json.load(sys.stdin)
assert "next" not in page
lst = next(v for k, v in page.items() if isinstance(v, list))
key = sys.argv[1]
print(json.dumps([r[key] if key != "*" else json.dumps(r, sort_keys=True) for r in lst]))' "$key"
}
# same KEY WANT_ROWS CMD...: paging gives the rows of one big page, and there are WANT_ROWS.
same() {
    local key=$1 want=$2
    shift 2
    local paged big
    paged=$(pages "$key" "$@") || fail "paging $*"
    big=$(one_page "$key" "$@") || fail "one page of $*"
    T_CHECKS=$((T_CHECKS + 1))
    python3 -c '
import json, sys
paged, big, want = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
rows = paged["rows"]
assert rows == big, f"pages differ from one page: {rows[:10]}... vs {big[:10]}..."
assert len(set(rows)) == len(rows), "a row shown twice"
assert len(rows) == want, f"{len(rows)} rows, want {want}"
assert paged["calls"] == (want + 6) // 7 or (want % 7 == 0 and paged["calls"] == want // 7), paged["calls"]
' "$paged" "$big" "$want" || fail "paging of $* (paged $paged, one page $big)"
    echo "paged $* : $want rows"
}

# ---- device list
same id 28 device list
same id 27 device list --tenant acme
expect 0 device list --tenant acme --limit 10
contains d09
lacks d10
contains "more rows follow: continue with --after d09"
expect 0 --json device list --tenant acme --limit 10
[ "$(json_get 'j["next"]')" = d09 ] || fail "device list next: $OUT"
expect 0 --json device list --tenant acme --after d09 --limit 10
[ "$(json_get '" ".join(d["id"] for d in j["devices"])')" = "d10 d11 d12 d13 d14 d15 d16 d17 d18 d19" ] \
    || fail "second page: $OUT"
# The last page says nothing more.
expect 0 --json device list --tenant acme --after d19
[ "$(json_get '"next" in j')" = False ] || fail "a next on the last page: $OUT"
expect 0 device list --tenant acme --after d19
lacks "more rows"
# A removed device's id is still a cursor: the page continues after it.
expect 0 device remove d12
expect 0 --json device list --tenant acme --after d12 --limit 2
[ "$(json_get '" ".join(d["id"] for d in j["devices"])')" = "d13 d14" ] || fail "after a removed id: $OUT"
# --all: every row, one header, in pages of --limit.
expect 0 device list --all --limit 4
[ "$(grep -c '^ID ' <<<"$OUT")" = 1 ] || fail "--all table has not exactly one header: $OUT"
[ "$(grep -c '^[a-z]' <<<"$OUT")" = 27 ] || fail "--all table rows: $OUT"
lacks "more rows"
expect 0 device list --tenant acme --all --limit 5 --csv
[ "$(printf '%s\n' "$OUT" | grep -c '^id,tenant')" = 1 ] || fail "--all csv header: $OUT"
[ "$(printf '%s\n' "$OUT" | grep -c ',acme,')" = 26 ] || fail "--all csv rows: $OUT"
expect 0 --json device list --all --limit 3
[ "$(wc -l <<<"$OUT")" = 27 ] || fail "--all --json: one line per device: $OUT"
python3 -c 'import json,sys; [json.loads(l)["id"] for l in sys.stdin]' <<<"$OUT" || fail "--all --json lines"
# Filters.
expect 0 --json device list --tenant acme --group ops
[ "$(json_get '" ".join(d["id"] for d in j["devices"])')" = "d03 d05 d07" ] || fail "--group: $OUT"
expect 0 --json device list --tenant acme --group ops --limit 2
[ "$(json_get 'j["next"]')" = d05 ] || fail "--group paging: $OUT"
expect 0 --json device list --tenant acme --type pump
[ "$(json_get '" ".join(d["id"] for d in j["devices"])')" = "p1" ] || fail "--type: $OUT"
expect 2 device list --group ops
contains "--group needs --tenant"
expect 3 device list --tenant acme --group nope
expect 2 device list --online --offline
$client "$addr" auth live thermo "$live_key" >/dev/null || fail "live device auth"
# A device that holds its session open (the protocol client of the tests, as a module).
python3 -c '
import sys, time, importlib.util
spec = importlib.util.spec_from_file_location("dc", sys.argv[1])
dc = importlib.util.module_from_spec(spec); spec.loader.exec_module(dc)
c = dc.Conn(sys.argv[2])
r, _ = dc.handshake(c, "live", "thermo", bytes.fromhex(sys.argv[3]))
assert r == "ok", r
print("up", flush=True)
time.sleep(30)
' "$(dirname "$0")/devclient.py" "$addr" "$live_key" >"$T_DIR/hold.log" 2>&1 &
holder=$!
for _ in $(seq 1 100); do grep -q up "$T_DIR/hold.log" && break; sleep 0.1; done
grep -q up "$T_DIR/hold.log" || fail "the holding device did not authenticate: $(cat "$T_DIR/hold.log")"
expect 0 --json device list --online
[ "$(json_get '" ".join(d["id"] for d in j["devices"])')" = "live" ] || fail "--online: $OUT"
expect 0 --json device list --tenant acme --offline
[ "$(json_get 'len(j["devices"])')" = 25 ] || fail "--offline count: $OUT"
[ "$(json_get '"live" in [d["id"] for d in j["devices"]]')" = False ] || fail "--offline shows live"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# ---- changes list (every change above is one row)
n_changes=$(sql "SELECT COUNT(*) FROM admin_audit")
[ "$n_changes" -ge 35 ] || fail "only $n_changes changes"
same id "$n_changes" changes list
n_acme=$(sql "SELECT COUNT(*) FROM admin_audit WHERE tenant='acme'")
same id "$n_acme" changes list --tenant acme
expect 0 changes list --limit 3
contains "more rows follow"
expect 0 changes list --limit 3 --all
[ "$(grep -c '^AT ' <<<"$OUT")" = 1 ] || fail "changes --all header"
[ "$(grep -c ' device\.add\| device\.remove\| tenant\.add\| type\.add\| group\.' <<<"$OUT")" = "$n_changes" ] \
    || fail "changes --all rows: $OUT"

# ---- events: 250 rows in acme, 60 of them in one millisecond (ties broken by id), 5 in globex
sql "INSERT INTO events (received_at, tenant, device_id, seq, kind, name, fields)
     SELECT UTC_TIMESTAMP(3) - INTERVAL (CASE WHEN seq <= 60 THEN 500 ELSE seq END) SECOND,
            'acme', CONCAT('d0', seq % 5), seq, IF(seq % 10 = 0, 'alarm', 'event'), 'temperature',
            JSON_OBJECT('value', CAST(seq AS CHAR))
     FROM seq_1_to_250" 2>/dev/null || sql "
     INSERT INTO events (received_at, tenant, device_id, seq, kind, name, fields)
     WITH RECURSIVE s(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 250)
     SELECT UTC_TIMESTAMP(3) - INTERVAL (CASE WHEN seq <= 60 THEN 500 ELSE seq END) SECOND,
            'acme', CONCAT('d0', seq % 5), seq, IF(seq % 10 = 0, 'alarm', 'event'), 'temperature',
            JSON_OBJECT('value', CAST(seq AS CHAR)) FROM s" || fail "seeding events"
sql "INSERT INTO events (received_at, tenant, device_id, seq, kind, name, fields)
     VALUES (UTC_TIMESTAMP(3), 'globex', 'g1', 1, 'event', 'temperature', '{}')"
same id 250 events --tenant acme
same id 25 events --tenant acme --kind alarm
same id 50 events --device d01
expect 0 events --tenant acme --since 1h
contains "more rows follow"
[ "$(grep -c ' acme ' <<<"$OUT")" = 100 ] || fail "events default page is not 100"
expect 0 events --tenant acme --since 1h --csv --all
[ "$(printf '%s\n' "$OUT" | grep -c '^time,tenant')" = 1 ] || fail "events --all csv header"
[ "$(printf '%s\n' "$OUT" | grep -c ',acme,')" = 250 ] || fail "events --all csv: $(wc -l <<<"$OUT") lines"
lacks "more rows"

# ---- alarms: 12 in acme, 8 in globex; alarm list without --tenant spans both
acme_id=$(sql "SELECT id FROM tenants WHERE name='acme'")
globex_id=$(sql "SELECT id FROM tenants WHERE name='globex'")
for i in $(seq 1 20); do
    t=$acme_id dev=d0$((i % 5))
    [ "$i" -gt 12 ] && t=$globex_id dev=g1
    sql "INSERT INTO alarms (tenant_id, device_id, source, name, severity, state, raised_at, cleared_at)
         VALUES ($t, '$dev', 'device', 'a$i', 'warning', IF($i % 3 = 0, 'raised', 'cleared'),
                 UTC_TIMESTAMP(3), IF($i % 3 = 0, NULL, UTC_TIMESTAMP(3)))" || fail "seeding alarm $i"
done
same id 20 alarm list --state all
same id 12 alarm list --state all --tenant acme
same id 6 alarm list
expect 0 --json alarm list --state all --limit 5
[ "$(json_get 'sorted({a["tenant"] for a in j["alarms"]})')" = "['globex']" ] || fail "newest first: $OUT"
expect 0 --json alarm list --state all
[ "$(json_get 'sorted({a["tenant"] for a in j["alarms"]})')" = "['acme', 'globex']" ] \
    || fail "alarm list without --tenant: $OUT"

# ---- audit: 9 blocks of up to 5 messages, three blocks at the same instant, messages of one
# block at the same time (ties broken by block, then position)
for b in $(seq 1 9); do
    at="UTC_TIMESTAMP(3) - INTERVAL $(((b % 3) * 2)) SECOND"
    body='['
    for m in $(seq 0 $((b % 5))); do
        [ "$m" -gt 0 ] && body+=','
        body+="[$((m % 2)),\"m$b-$m\",\"ok\",1000]"
    done
    body+=']'
    sql "INSERT INTO relay_audit_block (at, tenant, sender, device, outcomes, records, body)
         VALUES ($at, 'acme', 'iotd', 'd0$((b % 3))', 'ok', $((b % 5 + 1)), '$body')" \
        || fail "seeding audit block $b"
done
n_audit=$(sql "SELECT SUM(records) FROM relay_audit_block")
same '*' "$n_audit" audit
same '*' "$(sql "SELECT SUM(records) FROM relay_audit_block WHERE device='d01'")" audit --device d01
expect 0 audit --limit 4
contains "more rows follow"
expect 0 audit --all --limit 4
[ "$(grep -c ' acme ' <<<"$OUT")" = "$n_audit" ] || fail "audit --all: $OUT"

# ---- the same caps and cursor checks everywhere
for cmd in "events --tenant acme" "audit" "device list" "alarm list" "changes list"; do
    # shellcheck disable=SC2086
    expect 2 $cmd --limit 0
    contains "between 1 and 10000"
    # shellcheck disable=SC2086
    expect 2 $cmd --limit 10001
    # shellcheck disable=SC2086
    expect 0 $cmd --limit 10000
done
for cmd in "events --tenant acme" "audit" "alarm list" "changes list"; do
    # shellcheck disable=SC2086
    expect 2 $cmd --after bogus
    contains "not a cursor"
done
expect 2 device list --after 'no/such'
t_done
