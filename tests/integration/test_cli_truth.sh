#!/usr/bin/env bash
# The CLI tells the truth (issue 19): relay errors name their real cause (an unknown user, an
# operator's missing device: exit 3), a device's own ERROR shows its code and message, a
# timeout shortened by the catalogue says so, a --timeout-ms expiry is a timeout (10), not
# busy; --json is compact, one document per line; access check prints what iotctl(8) says
# (allow: true|false); backup's bytes is the file's size; stats refuses an unknown --sort.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
T_DEVICES="listen = 127.0.0.1:0"
t_start
addr=$(t_device_addr)
expect 0 tenant add acme
expect 0 tenant add globex
expect 0 type add thermo --tenant acme
expect 0 message add thermo mute_op --tenant acme --timeout 300
expect 0 message add thermo fail_op --tenant acme
printf 'pw-alice-1\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
"$IOTCTL_BIN" -s "$T_SOCK" --json device add d1 --tenant acme --type thermo >"$T_DIR/dev.jsonl" ||
    fail "device add d1"
T_CHECKS=$((T_CHECKS + 1))
[ "$(wc -l <"$T_DIR/dev.jsonl")" -eq 1 ] || fail "--json is not one line: $(cat "$T_DIR/dev.jsonl")"
"$IOTSIM_BIN" -c "$addr" -f "$T_DIR/dev.jsonl" --mute mute_op --error fail_op --duration 60 \
    --stats-interval 0 >"$T_DIR/sim.log" 2>&1 &
sim=$!
trap 'r=$?; kill $sim 2>/dev/null; (exit $r); t_cleanup' EXIT
for _ in $(seq 1 100); do
    ctl --json device show d1
    [ "$(json_get 'j.get("online")')" = True ] && break
    sleep 0.1
done
expect 0 access grant user:alice device:d1 --tenant acme

expect 3 send --as ghost@acme d1 fail_op
contains "no such user ghost@acme"
expect 3 send --tenant acme nosuch fail_op
contains "no such device nosuch"
expect 7 send --tenant globex d1 fail_op
contains "not in tenant globex"
expect 4 send --as alice@acme nosuch fail_op         # a user's own view: denied
expect 12 send --tenant acme d1 fail_op
contains "the device answered ERROR code device: refused"
expect 12 --json send --tenant acme d1 fail_op
# the JSON error alone on standard output; the "iotctl: ... (error)" line on standard error
OUT=$("$IOTCTL_BIN" -s "$T_SOCK" --json send --tenant acme d1 fail_op 2>/dev/null)
[ "$(json_get 'j["code"]')" = error ] || fail "ERROR's JSON code: $OUT"
expect 10 send --tenant acme --timeout 5000 d1 mute_op
contains "--timeout 5000 was shortened"
contains "no answer within 300 ms"
expect 10 send --tenant acme --timeout 100 d1 mute_op
contains "no answer from the device within 100 ms"
lacks "shortened"
# iotctl's own deadline: a timeout, said to be iotctl's, never busy.
expect 10 --timeout-ms 100 send --tenant acme --timeout 2000 d1 mute_op
contains "no answer from iotd within 100 ms (--timeout-ms)"
lacks "busy"

# access check: the lines iotctl(8) lists; rule 0 (a number) when no rule applies.
expect 3 access check user:ghost@acme d1 fail_op       # no such user: not_found, not a deny
contains "unknown user ghost@acme"
expect 0 user add bob@acme --password-file "$T_DIR/pw"
expect 4 access check user:bob@acme d1 fail_op
[ "$(head -1 <<<"$OUT")" = deny ] || fail "first line: $OUT"
for key in subject device message allow rule reason; do
    contains "
$key: "
done
contains "rule: 0"
contains "
allow: false"                                         # true|false here, not yes|no
expect 0 access check user:alice@acme d1 fail_op
contains "
allow: true"
expect 0 --json access check user:alice@acme d1 fail_op
[ "$(json_get 'type(j["rule"]).__name__')" = int ] || fail "rule is not a number: $OUT"
T_CHECKS=$((T_CHECKS + 1))
[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "--json result is not one line: $OUT"

# Alarm rules: a field the event's catalogue does not declare is refused (bad_args, exit 2).
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float unit:str?"
expect 0 alarm rule add hot --tenant acme --event temperature --field value --op '>' --threshold 30
expect 0 alarm rule add hot-unit --tenant acme --event temperature --on type:thermo --field unit \
    --op '==' --threshold 1
expect 2 alarm rule add wet --tenant acme --event temperature --field humidity --op '>' --threshold 1
contains "declares no field humidity"
expect 2 alarm rule add wet --tenant acme --event temperature --on device:d1 --field valu --op '>' \
    --threshold 1
expect 2 alarm rule add wet --tenant acme --event temperature --on type:thermo --field val --op '>' \
    --threshold 1
expect 0 alarm rule add quiet --tenant acme --event temperature --silence 60 # no field: fine
expect 0 alarm rule list --tenant acme
lacks wet

# --json: one compact line per document, numbers as numbers (ids, seqs, latencies, counts).
numbers_are_numbers() {
    python3 -c '
import json, sys
numeric = {"id", "seq", "latency_ms", "rule", "rows", "threshold", "hysteresis", "for_ms",
           "silence_s", "ts_ms", "count", "devices", "users", "types", "schema", "tables"}
def walk(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            # a list or object under such a key is a table of rows (the devices of device list)
            # (and a device id, in a row or in the detail of a change, is a name)
            if k == "id" and (path.startswith(".devices") or path.endswith(".detail")):
                continue
            if k in numeric and x is not None and not isinstance(x, (int, float, list, dict)):
                sys.exit("%s.%s is %r, not a number" % (path, k, x))
            walk(x, path + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(x, "%s[%d]" % (path, i))
lines = sys.stdin.read().splitlines()
if len(lines) != 1:
    sys.exit("%d lines, want one document on one line" % len(lines))
walk(json.loads(lines[0]), "")
' <<<"$OUT" || fail "--json output of: $OUT"
    T_CHECKS=$((T_CHECKS + 1))
}
for cmd in "audit --tenant acme" "alarm rule list --tenant acme" "tenant list" "device list" \
    "access list --tenant acme" "changes list"; do
    # shellcheck disable=SC2086
    expect 0 --json $cmd
    numbers_are_numbers
done

# audit --outcome takes the outcome names only (a typo is not an empty audit); device history
# --limit is 1 to 1000.
expect 2 audit --tenant acme --outcome timeouts
contains "unknown outcome 'timeouts'"
for _ in $(seq 1 100); do # the audit is written in batches: the timeouts above, once stored
    expect 0 --json audit --tenant acme --outcome timeout
    [ "$(json_get 'len(j["audit"])')" -gt 0 ] && break
    sleep 0.1
done
[ "$(json_get 'len(j["audit"]) > 0 and all(a["outcome"] == "timeout" for a in j["audit"])')" = True ] ||
    fail "audit --outcome timeout: $OUT"
expect 2 device history d1 --limit 0
expect 2 device history d1 --limit 1001
expect 0 device history d1 --limit 1000

# backup: bytes is the size of FILE.
expect 0 --json backup "$T_DIR/snap.backup"
T_CHECKS=$((T_CHECKS + 1))
[ "$(json_get 'j["bytes"]')" = "$(stat -c %s "$T_DIR/snap.backup")" ] ||
    fail "backup bytes is not the file's size ($(stat -c %s "$T_DIR/snap.backup")): $OUT"

# stats: an unknown --sort is a usage error at once, not a stream that never yields a sample.
OUT=$(timeout 20 "$IOTCTL_BIN" -s "$T_SOCK" stats --sort bogus --count 1 2>&1) && RC=0 || RC=$?
T_CHECKS=$((T_CHECKS + 1))
[ "$RC" -eq 2 ] || fail "stats --sort bogus -> exit $RC, want 2: $OUT"
contains "--sort must be"
expect 0 --json stats --sort in_flight --count 1 --interval 100
expect 2 stats --interval 99 --count 1 # the ranges iotctl(8) gives, named by their options
contains "--interval must be 100..60000 ms"
expect 2 message add thermo slow_op --tenant acme --timeout 99
expect 0 message add thermo slow_op --tenant acme --timeout 600000
expect 2 lease d1 temperature --tenant acme --ttl 604801
contains "--ttl must be 0..604800"

# --json usage errors are JSON on standard output even when the command is missing or unknown
# (--json after an unknown command included); "needs a verb" when only an option follows a noun.
for words in "--json" "--json frob" "frob --json" "device frob --json" "device --json"; do
    # shellcheck disable=SC2086
    OUT=$("$IOTCTL_BIN" -s "$T_SOCK" $words 2>/dev/null) && RC=0 || RC=$?
    T_CHECKS=$((T_CHECKS + 1))
    [ "$RC" -eq 2 ] || fail "iotctl $words -> exit $RC, want 2"
    [ "$(json_get 'j["code"]')" = bad_args ] || fail "iotctl $words: no JSON error: $OUT"
done
contains "'device' needs a verb"

# --help: every exit status 0..12 and --csv.
"$IOTCTL_BIN" --help >"$T_DIR/help.txt"
for s in $(seq 0 12); do
    T_CHECKS=$((T_CHECKS + 1))
    grep -qE "^ +$s  " "$T_DIR/help.txt" || fail "--help lacks exit status $s"
done
T_CHECKS=$((T_CHECKS + 1))
grep -q -- "--csv" "$T_DIR/help.txt" || fail "--help lacks --csv"
kill $sim 2>/dev/null
wait $sim 2>/dev/null
t_stop
t_done
