#!/usr/bin/env bash
# m0_tests.sh TOP OUT TEST... - build the library's unit tests (tests/unit/firmware/TEST.c)
# for a Cortex-M0 with arm-none-eabi-gcc and newlib-nano, against the cmocka subset in shim/,
# with a 512-byte frame limit, and run each on qemu's micro:bit with semihosting for output
# and exit status. Fails when a test fails, faults or does not finish within 60 s.
set -euo pipefail
top=$1 out=$2
shift 2
here=$top/tests/unit/firmware/m0
mkdir -p "$out"
cflags=(-mcpu=cortex-m0 -mthumb -Os -g -std=c99 -Wall -Wextra -Werror -ffunction-sections
        -fdata-sections -DIOTP_MAX_FRAME=512 -DIOTP_MAX_ARGS=16 -DIOTP_SCAN_WORDS=0 -DTEST_SENT_CAP=3072
        -DTEST_MAX_NOTES=40 -I"$here/shim" -I"$top/firmware/include" -I"$top/firmware/src")
status=0
for t in "$@"; do
    arm-none-eabi-gcc "${cflags[@]}" -nostartfiles -T "$here/m0.ld" --specs=nano.specs \
        --specs=nosys.specs -Wl,--gc-sections -o "$out/$t.elf" "$top/tests/unit/firmware/$t.c" \
        "$here/m0_runner.c" "$top"/firmware/src/iotp_*.c
    echo "== $t on qemu-system-arm -M microbit ($(arm-none-eabi-size "$out/$t.elf" | awk 'NR == 2 {print $1 " bytes of flash, " $2 + $3 " of RAM"}'))"
    if ! timeout 60 qemu-system-arm -M microbit -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$out/$t.elf"; then
        echo "$t: FAILED on the Cortex-M0" >&2
        status=1
    fi
done
exit $status
