#!/usr/bin/env bash
# Backup and restore (issue 19): "iotctl backup FILE" while iotd runs and 20 simulated devices
# send events, once against the local MariaDB and once against an external one ([database]
# url); "iotd -R FILE" restores into a fresh state_dir (and, for the external one, an empty
# database); started on it, iotd lets every device authenticate with its old secret (the
# sealing key came back too), and every event acknowledged before the backup started is there.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
sims=()
ext_pid=
cleanup_all() {
    for p in "${sims[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$ext_pid" ] && kill -TERM "$ext_pid" 2>/dev/null
    t_cleanup
}
trap cleanup_all EXIT
sql_at() { mariadb --socket="$1" -N iotd -e "$2"; }

# An external MariaDB of our own (url = unix:...), for the second round.
ext=$T_DIR/ext
mkdir -p "$ext/data" "$ext/run"
mariadb-install-db --no-defaults --datadir="$ext/data" --auth-root-authentication-method=socket \
    --skip-test-db --user="$(id -un)" --tmpdir="$ext/run" >"$ext/install.log" 2>&1 ||
    fail "mariadb-install-db: $(tail -3 "$ext/install.log")"
/usr/sbin/mariadbd --no-defaults --datadir="$ext/data" --socket="$ext/run/db.sock" \
    --skip-networking --pid-file="$ext/run/db.pid" --log-error="$ext/error.log" \
    --tmpdir="$ext/run" --user="$(id -un)" --innodb-buffer-pool-size=32M &
ext_pid=$!
for _ in $(seq 1 300); do mariadb --socket="$ext/run/db.sock" -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
mariadb --socket="$ext/run/db.sock" -e "SELECT 1" >/dev/null 2>&1 || fail "the external mariadbd did not start"

# round URL SOCKET_OF_STATE: one backup under load and its restore. $1 is the [database] url
# ("local" or unix:...); $2 the socket iotd's data is in, for the checks.
round() {
    local url=$1 name=$2
    T_STATE=$T_DIR/$name-state T_SOCK=$T_DIR/$name-state/control.sock T_CONF=$T_DIR/$name.conf
    T_DEVICES="listen = 127.0.0.1:0"
    t_config
    sed -i "s|^url = local|url = $url|" "$T_CONF"
    t_start
    local addr db_sock
    addr=$(t_device_addr)
    db_sock=$3
    expect 0 tenant add acme
    expect 0 type add thermo --tenant acme
    expect 0 message add thermo temperature --tenant acme --direction event --args "value:float"
    : >"$T_DIR/$name.jsonl"
    for i in $(seq 1 20); do
        "$IOTCTL_BIN" -s "$T_SOCK" --json device add "$name-d$i" --tenant acme --type thermo \
            >>"$T_DIR/$name.jsonl" || fail "device add $name-d$i"
    done
    : >"$T_DIR/$name.acks"
    mkdir -p "$T_DIR/$name-seq"
    "$IOTSIM_BIN" -c "$addr" -f "$T_DIR/$name.jsonl" --event temperature --field value=20 \
        --events 20 --duration 120 --stats-interval 0 --state-dir "$T_DIR/$name-seq" \
        --ack-log "$T_DIR/$name.acks" >"$T_DIR/$name-sim.log" 2>&1 &
    sims+=($!)
    for _ in $(seq 1 300); do [ "$(wc -l <"$T_DIR/$name.acks")" -ge 1000 ] && break; sleep 0.1; done
    [ "$(wc -l <"$T_DIR/$name.acks")" -ge 1000 ] || fail "$name: fewer than 1000 events acknowledged in 30 s"

    # What was acknowledged before the backup started, then the backup while events go on.
    cp "$T_DIR/$name.acks" "$T_DIR/$name.acked-before"
    expect 0 --json backup "$T_DIR/$name.backup"
    local rows
    rows=$(json_get 'j["rows"]')
    T_CHECKS=$((T_CHECKS + 1))
    [ "$(stat -c %a "$T_DIR/$name.backup")" = 600 ] || fail "backup mode $(stat -c %a "$T_DIR/$name.backup")"
    T_CHECKS=$((T_CHECKS + 1))
    [ "$(tail -1 "$T_DIR/$name.backup")" = "-- end" ] || fail "the backup does not end with -- end"
    T_CHECKS=$((T_CHECKS + 1))
    [ ! -e "$T_DIR/$name.backup.partial" ] || fail "a .partial file was left"
    n_after=$(wc -l <"$T_DIR/$name.acks")
    echo "ok: $name: backup of $rows rows, $(wc -l <"$T_DIR/$name.acked-before") events acknowledged before it, $n_after by its end"
    expect 5 backup "$T_DIR/$name.backup"                  # never overwrites
    contains "exists"
    # A relative FILE is iotctl's working directory's, not iotd's.
    (cd "$T_DIR" && expect 0 backup "$name-relative.backup") || exit 1
    T_CHECKS=$((T_CHECKS + 1))
    [ -f "$T_DIR/$name-relative.backup" ] || fail "a relative FILE did not land in iotctl's directory"
    expect 1 backup "$T_DIR/no-such-dir/x.backup"
    contains "no-such-dir"
    kill "${sims[-1]}"
    wait "${sims[-1]}" 2>/dev/null
    t_stop

    # Restore into a fresh state_dir (and database), then start on it.
    T_STATE=$T_DIR/$name-restored T_SOCK=$T_DIR/$name-restored/control.sock
    T_CONF=$T_DIR/$name-restored.conf
    t_config
    if [ "$url" != local ]; then
        mariadb --socket="$db_sock" -e "CREATE DATABASE restored" || fail "create database"
        sed -i "s|^url = .*|url = unix:$db_sock/restored|" "$T_CONF"
    fi
    "$IOTD_BIN" -c "$T_CONF" -R "$T_DIR/$name.backup" >"$T_DIR/$name-restore.out" 2>&1 ||
        fail "$name: iotd -R: $(cat "$T_DIR/$name-restore.out")"
    T_CHECKS=$((T_CHECKS + 1))
    [ "$(stat -c %a "$T_STATE/secret.key")" = 600 ] || fail "the restored key is not 0600"
    # A second restore into the same place is refused and changes nothing.
    T_CHECKS=$((T_CHECKS + 1))
    ! "$IOTD_BIN" -c "$T_CONF" -R "$T_DIR/$name.backup" >"$T_DIR/$name-restore2.out" 2>&1 ||
        fail "a restore over a restored state_dir succeeded"
    grep -q "fresh state_dir" "$T_DIR/$name-restore2.out" || fail "second restore: $(cat "$T_DIR/$name-restore2.out")"
    t_start
    addr=$(t_device_addr)
    expect 0 device list --tenant acme
    for i in 1 20; do contains "$name-d$i"; done
    # Every device authenticates with its old secret (unsealed with the restored key).
    "$IOTSIM_BIN" -c "$addr" -f "$T_DIR/$name.jsonl" --exit-when-connected --duration 60 \
        --stats-interval 0 >"$T_DIR/$name-sim2.log" 2>&1 ||
        fail "$name: not every device authenticated after the restore: $(tail -5 "$T_DIR/$name-sim2.log")"
    T_CHECKS=$((T_CHECKS + 1))
    echo "ok: $name: all 20 devices authenticated after the restore"
    # Every event acknowledged before the backup started is in the restored database.
    local db=iotd
    local restored_sock=$T_STATE/mariadb/run/mysqld.sock
    if [ "$url" != local ]; then db=restored; restored_sock=$db_sock; fi
    mariadb --socket="$restored_sock" -N "$db" -e "SELECT device_id, seq FROM events" |
        sort -u >"$T_DIR/$name.restored"
    awk '{ print $1 "\t" $2 }' "$T_DIR/$name.acked-before" | sort -u >"$T_DIR/$name.want"
    missing=$(comm -23 "$T_DIR/$name.want" "$T_DIR/$name.restored" | wc -l)
    T_CHECKS=$((T_CHECKS + 1))
    [ "$missing" -eq 0 ] || fail "$name: $missing of $(wc -l <"$T_DIR/$name.want") acknowledged events are missing after the restore: $(comm -23 "$T_DIR/$name.want" "$T_DIR/$name.restored" | head -3)"
    echo "ok: $name: all $(wc -l <"$T_DIR/$name.want") events acknowledged before the backup were restored ($(wc -l <"$T_DIR/$name.restored") in all)"
    t_stop
}

round local local "$T_DIR/local-state/mariadb/run/mysqld.sock"
round "unix:$ext/run/db.sock/iotd" external "$ext/run/db.sock"
t_done
