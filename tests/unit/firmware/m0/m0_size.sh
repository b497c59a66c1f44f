#!/usr/bin/env bash
# m0_size.sh TOP OUT TEXT_BUDGET IMAGE_BUDGET [FULL_TEXT_BUDGET FULL_IMAGE_BUDGET] - build what a
# device links for a Cortex-M0+ with Debian's arm-none-eabi-gcc and newlib (-Os, a 512-byte
# frame limit, error names without sentences: IOTP_ERROR_SENTENCES=0, control bytes found a byte
# at a time: IOTP_SCAN_WORDS=0, and the thermometer's own choices: no notes,
# IOTP_DEVICE_NOTES=0, and HMAC only, IOTP_DEVICE_ATECC=0), and print:
#   - the text of each device-side object and their total (the server's handshake excluded);
#   - the thermometer example (firmware/examples/thermo) linked with --gc-sections, and the
#     part of that image that is the library's (from the linker map);
#   - the same two totals with the notes and the ATECC508A path left in (the defaults);
#   - the RAM the engine needs: its struct plus the receive and transmit buffers;
#   - the ATECC508A code and the ESP8266 AT transport's text and RAM, apart (a board's choice,
#     not in the budget).
# Fails when the objects' total text is over TEXT_BUDGET or the image's library part over
# IMAGE_BUDGET bytes (and the defaults' over FULL_TEXT_BUDGET and FULL_IMAGE_BUDGET, when given),
# so that growth is a decision, not an accident.
set -euo pipefail
top=$1 out=$2 text_budget=$3 image_budget=$4 full_text_budget=${5:-} full_image_budget=${6:-}
frame=512
cc=arm-none-eabi-gcc
mkdir -p "$out"
base=(-mcpu=cortex-m0plus -mthumb -Os -std=c99 -pedantic -Wall -Wextra -Werror
      -ffunction-sections -fdata-sections -DIOTP_MAX_FRAME=$frame -DIOTP_ERROR_SENTENCES=0
      -DIOTP_SCAN_WORDS=0 -I"$top/firmware/include" -I"$top/firmware/examples/thermo")
device_side=(error frame_parser frame_writer types hex sha256 handshake device_hs transport outbox
             backoff device)

# build DIR [-D...]: the device-side objects, their archive and the linked thermometer in DIR;
# sets objs, total (the objects' text) and image (the library's part of the image).
build() {
    local dir=$1 m
    shift
    cflags=("${base[@]}" "$@")
    mkdir -p "$dir"
    objs=()
    for m in "${device_side[@]}"; do
        "$cc" "${cflags[@]}" -c "$top/firmware/src/iotp_$m.c" -o "$dir/iotp_$m.o"
        objs+=("$dir/iotp_$m.o")
    done
    total=$(arm-none-eabi-size -t "${objs[@]}" | awk '/TOTALS/ {print $1}')
    rm -f "$dir/libiotp.a"
    arm-none-eabi-ar rcs "$dir/libiotp.a" "${objs[@]}"
    "$cc" "${cflags[@]}" -c "$top/firmware/examples/thermo/thermo.c" -o "$dir/thermo.o"
    "$cc" "${cflags[@]}" -c "$top/tests/unit/firmware/m0/board_stub.c" -o "$dir/board_stub.o"
    "$cc" -mcpu=cortex-m0plus -mthumb -Os --specs=nano.specs --specs=nosys.specs \
        -Wl,--gc-sections -Wl,-Map="$dir/thermo.map" "$dir/thermo.o" "$dir/board_stub.o" \
        "$dir/libiotp.a" -o "$dir/thermo.elf"
    python3 "$top/tests/unit/firmware/m0/map_sizes.py" "$dir/thermo.map" libiotp.a >"$dir/image.txt"
    image=$(awk '/library total/ {print $3}' "$dir/image.txt")
}

build "$out/full"
full_total=$total full_image=$image
build "$out" -DIOTP_DEVICE_NOTES=0 -DIOTP_DEVICE_ATECC=0
echo "== device-side objects, $("$cc" -dumpversion) -Os -mcpu=cortex-m0plus, IOTP_MAX_FRAME=$frame"
arm-none-eabi-size -t "${objs[@]}" | sed "s|$out/||"
echo "== example image (thermo.c, --gc-sections, newlib-nano)"
arm-none-eabi-size "$out/thermo.elf" | sed "s|$out/||"
echo "== the library's part of that image (flash: code and constants)"
cat "$out/image.txt"
echo "== with the notes and the ATECC508A path in (the defaults): device side $full_total bytes, image's library part $full_image bytes"

"$cc" "${cflags[@]}" -c "$top/tests/unit/firmware/m0/ram_probe.c" -o "$out/ram_probe.o"
size_of() { arm-none-eabi-nm -S -t d "$out/ram_probe.o" | awk -v s="$1" '$4 == s {print $2 + 0}'; }
engine=$(size_of probe_engine)
echo "== RAM for a $frame-byte frame limit"
echo "struct iotp_device $engine (of which outbox $(size_of probe_outbox), parser $(size_of probe_parser), handshake $(size_of probe_handshake))"
echo "engine + rx $frame + tx $frame = $((engine + 2 * frame)) bytes, plus the outbox storage the application gives (thermo.c: 1024)"

# A board's choices, not in the total: what the ATECC508A MAC (alg=atecc508a-mac: the MAC
# message and the software model; the engine reaches the chip through function pointers, so an
# HMAC device never links it) and the I2C driver add.
for m in atecc atecc_i2c; do
    "$cc" "${cflags[@]}" -c "$top/firmware/src/iotp_$m.c" -o "$out/iotp_$m.o"
done
echo "== ATECC508A (iotp_atecc.c, iotp_atecc_i2c.c, for boards with the chip; not in the total)"
arm-none-eabi-size "$out/iotp_atecc.o" "$out/iotp_atecc_i2c.o" | sed "s|$out/||"

# A port's part, not in the total: what a board with an ESP8266 on a UART adds.
"$cc" "${cflags[@]}" -c "$top/firmware/src/iotp_esp_at.c" -o "$out/iotp_esp_at.o"
echo "== ESP8266 AT transport (iotp_esp_at.c, for boards with an AT modem; not in the total)"
arm-none-eabi-size "$out/iotp_esp_at.o" | sed "s|$out/||"
echo "RAM: struct iotp_esp_at $(size_of probe_esp_at), plus the receive ring the port gives (2 frames: $((2 * frame)))"

echo "== device side $total bytes of text (budget $text_budget); image's library part $image bytes (budget $image_budget)"
[ "$total" -le "$text_budget" ] || { echo "device-side text over budget" >&2; exit 1; }
[ "$image" -le "$image_budget" ] || { echo "image's library part over budget" >&2; exit 1; }
if [ -n "$full_text_budget" ]; then
    echo "== defaults: budgets $full_text_budget and $full_image_budget"
    [ "$full_total" -le "$full_text_budget" ] || { echo "device-side text (defaults) over budget" >&2; exit 1; }
    [ "$full_image" -le "$full_image_budget" ] || { echo "image's library part (defaults) over budget" >&2; exit 1; }
fi
