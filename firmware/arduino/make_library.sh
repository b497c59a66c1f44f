#!/usr/bin/env bash
# make_library.sh TOP OUT - assemble the Arduino library "Iotp" in OUT/Iotp from the one copy of
# the sources: firmware/arduino (library.properties, keywords.txt, the C++ wrapper in src/,
# examples/) plus the portable library (firmware/include/iotp -> src/iotp/, firmware/src/*.c ->
# src/). The server's handshake (iotp_server_hs.c) stays out: a device never links it. Zip
# OUT/Iotp and the Arduino IDE installs it (Sketch > Include Library > Add .ZIP Library).
set -euo pipefail
top=$1 out=$2/Iotp
rm -rf "$out"
mkdir -p "$out/src/iotp"
cp "$top/firmware/arduino/library.properties" "$top/firmware/arduino/keywords.txt" "$out/"
cp -R "$top/firmware/arduino/examples" "$out/"
cp "$top/firmware/arduino/src/"* "$out/src/"
cp "$top/firmware/include/iotp/"*.h "$out/src/iotp/"
cp "$top/firmware/src/"*.h "$out/src/"
for f in "$top/firmware/src/"*.c; do
    [ "$(basename "$f")" = iotp_server_hs.c ] || cp "$f" "$out/src/"
done
