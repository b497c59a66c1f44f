#!/usr/bin/env bash
# The Debian package (issue 19): build a tree configured for the system's paths, package it
# with "cpack -G DEB", check its file list and dependencies, install it with dpkg -i on this
# machine, check the user, the state directory and (under systemd) the running unit, then
# remove and purge it and check that nothing is left: files, state directory, user, group.
# Needs root and dpkg; skipped (77) otherwise, and when an iotd package is already installed.
set -u
: "${IOT_SOURCE_DIR:?IOT_SOURCE_DIR must be the source tree}"
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i)"
command -v dpkg-deb >/dev/null && command -v cpack >/dev/null || skip "needs dpkg-deb and cpack"
dpkg-query -W -f='${Status}' iotd 2>/dev/null | grep -q "installed" && skip "an iotd package is installed"
getent passwd iotd >/dev/null && skip "a user iotd exists already (not ours to remove)"
T_DIR=$(mktemp -d /tmp/iotd-deb.XXXXXX)
installed=0
cleanup() {
    local rc=$?
    [ $installed -eq 1 ] && dpkg -P iotd >/dev/null 2>&1
    rm -rf "$T_DIR"
    exit $rc
}
trap cleanup EXIT
checks=0
check() { checks=$((checks + 1)); }

# The tree this test runs from is packaged as it is when it is a Release build for the system's
# paths (./dev.sh test configures its Release tree so, and runs this test there only): a second
# build of the whole project would cost the suite minutes. Otherwise a tree of its own.
cache=${IOT_BUILD_DIR:-}/CMakeCache.txt
if [ -f "$cache" ] && grep -qx 'CMAKE_BUILD_TYPE:STRING=Release' "$cache" &&
    grep -qx 'CMAKE_INSTALL_PREFIX:PATH=/usr' "$cache" &&
    grep -qx 'CMAKE_INSTALL_SYSCONFDIR:PATH=/etc' "$cache"; then
    build=$T_DIR/build
    mkdir -p "$build"
    # cpack -B puts its staging tree and the .deb here, not in the tree under test.
    cpack_dir=$IOT_BUILD_DIR
else
    build=$T_DIR/build
    cmake -S "$IOT_SOURCE_DIR" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIOTD_TESTS=OFF \
        -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc >"$T_DIR/configure.out" 2>&1 ||
        fail "configure: $(tail -5 "$T_DIR/configure.out")"
    cmake --build "$build" -j2 >"$T_DIR/build.out" 2>&1 || fail "build: $(tail -20 "$T_DIR/build.out")"
    cpack_dir=$build
fi
(cd "$build" && cpack -G DEB --config "$cpack_dir/CPackConfig.cmake" -B "$build") \
    >"$T_DIR/cpack.out" 2>&1 || fail "cpack: $(tail -20 "$T_DIR/cpack.out")"
deb=$(ls "$build"/iotd_*.deb 2>/dev/null | head -1)
[ -f "$deb" ] || fail "no .deb in $build: $(tail -5 "$T_DIR/cpack.out")"
echo "ok: built $(basename "$deb")"

# The file list: binaries under /usr, configuration under /etc (conffiles), the unit, sysusers,
# logrotate, completion, man pages; nothing under /usr/local or /var.
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$T_DIR/files"
for f in /usr/bin/iotctl /usr/sbin/iotd /usr/bin/iottop /usr/bin/iotsim /etc/iotd/iotd.conf \
    /etc/logrotate.d/iotd /usr/lib/systemd/system/iotd.service /usr/lib/sysusers.d/iotd.conf \
    /usr/share/bash-completion/completions/iotctl /usr/share/man/man8/iotd.8.gz; do
    check
    grep -qx "$f" "$T_DIR/files" || grep -qx "${f%.gz}" "$T_DIR/files" || fail "$f is not in the package"
done
check
! grep -E '^/(usr/local|var|home|tmp)/' "$T_DIR/files" || fail "the package writes outside its paths"
dpkg-deb -e "$deb" "$T_DIR/control"
check
grep -qx "/etc/iotd/iotd.conf" "$T_DIR/control/conffiles" 2>/dev/null ||
    fail "iotd.conf is not a conffile: $(cat "$T_DIR/control/conffiles" 2>/dev/null)"
depends=$(sed -n 's/^Depends: //p' "$T_DIR/control/control")
for dep in libuv1 libssl3 libmariadb3 libcjson1 libargon2-1 mariadb-server-core; do
    check
    echo "$depends" | grep -q "\b$dep\b" || fail "Depends lacks $dep: $depends"
done
check
grep -q "ExecStart=/usr/sbin/iotd -f -c /etc/iotd/iotd.conf" \
    <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/iotd.service) ||
    fail "the packaged unit does not name /usr/sbin/iotd and /etc/iotd/iotd.conf"
echo "ok: file list, conffiles and Depends: $depends"

# Install: the user, its group and the state directory exist, owned by it.
installed=1
dpkg -i "$deb" >"$T_DIR/dpkg-i.out" 2>&1 || fail "dpkg -i: $(tail -10 "$T_DIR/dpkg-i.out")"
check
getent passwd iotd >/dev/null || fail "dpkg -i did not create the user iotd"
check
getent group iotd >/dev/null || fail "dpkg -i did not create the group iotd"
check
[ "$(stat -c '%U:%G %a' /var/lib/iotd)" = "iotd:iotd 750" ] ||
    fail "/var/lib/iotd is $(stat -c '%U:%G %a' /var/lib/iotd 2>&1)"
check
/usr/sbin/iotd -t -c /etc/iotd/iotd.conf >"$T_DIR/check.out" 2>&1 ||
    fail "the installed iotd refuses the installed configuration: $(cat "$T_DIR/check.out")"
check
[ "$(/usr/bin/iotctl --version 2>&1)" != "" ] || fail "the installed iotctl does not run"
echo "ok: dpkg -i created user, group and /var/lib/iotd"

if [ -d /run/systemd/system ]; then
    # systemd runs this machine: the package enabled and started the unit.
    for _ in $(seq 1 300); do systemctl is-active -q iotd && break; sleep 0.2; done
    check
    systemctl is-active -q iotd || fail "iotd.service is not active: $(systemctl status iotd 2>&1 | tail -20)"
    check
    systemctl is-enabled -q iotd || fail "iotd.service is not enabled"
    for _ in $(seq 1 300); do /usr/bin/iotctl status >/dev/null 2>&1 && break; sleep 0.2; done
    check
    /usr/bin/iotctl status >/dev/null || fail "iotctl status against the packaged iotd failed"
    echo "ok: iotd.service enabled, active and answering"
else
    echo "skip: systemd is not PID 1 here ($(ps -p 1 -o comm=)): the unit's start is not checked"
fi

# Remove: the programs go, the configuration stays; purge: everything goes.
dpkg -r iotd >"$T_DIR/dpkg-r.out" 2>&1 || fail "dpkg -r: $(tail -10 "$T_DIR/dpkg-r.out")"
check
[ ! -e /usr/sbin/iotd ] && [ ! -e /usr/bin/iotctl ] || fail "dpkg -r left the programs"
check
[ -f /etc/iotd/iotd.conf ] || fail "dpkg -r removed the configuration (a conffile stays until purge)"
dpkg -P iotd >"$T_DIR/dpkg-p.out" 2>&1 || fail "dpkg -P: $(tail -10 "$T_DIR/dpkg-p.out")"
installed=0
while read -r f; do
    [ -z "$f" ] || [ -d "$f" ] && continue
    check
    [ ! -e "$f" ] || fail "purge left $f"
done <"$T_DIR/files"
check
[ ! -e /etc/iotd ] || fail "purge left /etc/iotd"
check
[ ! -e /var/lib/iotd ] || fail "purge left /var/lib/iotd"
check
! getent passwd iotd >/dev/null || fail "purge left the user iotd"
check
! getent group iotd >/dev/null || fail "purge left the group iotd"
check
! dpkg-query -W iotd >/dev/null 2>&1 || fail "dpkg still knows the package"
echo "ok: $checks checks"
