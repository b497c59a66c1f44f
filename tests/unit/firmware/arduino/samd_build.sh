#!/usr/bin/env bash
# samd_build.sh TOP OUT - build the Arduino library and its Thermometer example for the MKR1000
# (ATSAMD21, Cortex-M0+) with Debian's arm-none-eabi-g++ and newlib-nano, against the small
# stubs of the Arduino API and WiFi101 in samd_stubs/ (Debian has no SAMD core), the way the
# Arduino IDE does (the .ino behind #include <Arduino.h>), and link the image with
# --gc-sections (with gcc: no libstdc++, as the cores link). The library, its wrapper and the sketch must compile without a warning. Prints
# the image's size and the library's part of it.
set -euo pipefail
top=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out"
mkdir -p "$out/lib" "$out/sketch"
"$top/firmware/arduino/make_library.sh" "$top" "$out"
lib=$out/Iotp
common=(-mcpu=cortex-m0plus -mthumb -Os -ffunction-sections -fdata-sections -DARDUINO=10819
        -DARDUINO_SAMD_MKR1000 -DARDUINO_ARCH_SAMD -D__SAMD21G18A__ -I"$here/samd_stubs")
cflags=("${common[@]}" -std=gnu11)
cxxflags=("${common[@]}" -std=gnu++11 -fno-rtti -fno-exceptions -fno-threadsafe-statics)
strict=(-Wall -Wextra -Werror)

for f in "$lib"/src/*.c "$lib"/src/*.cpp "$here/samd_stubs/stubs.cpp"; do
    o=$out/lib/$(basename "$f").o
    case $f in
    *.c) arm-none-eabi-gcc "${cflags[@]}" "${strict[@]}" -I"$lib/src" -c "$f" -o "$o" ;;
    *.cpp) arm-none-eabi-g++ "${cxxflags[@]}" "${strict[@]}" -I"$lib/src" -c "$f" -o "$o" ;;
    esac
done
rm -f "$out/libIotp.a"
arm-none-eabi-ar rcs "$out/libIotp.a" $(ls "$out"/lib/*.o | grep -v stubs.cpp.o)

for ex in "$lib"/examples/*/; do
    name=$(basename "$ex")
    { echo '#include <Arduino.h>'; echo "#line 1 \"$name.ino\""; cat "$ex/$name.ino"; } \
        >"$out/sketch/$name.cpp"
    arm-none-eabi-g++ "${cxxflags[@]}" "${strict[@]}" -I"$lib/src" -I"$ex" \
        -c "$out/sketch/$name.cpp" -o "$out/sketch/$name.o"
    arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb -Os --specs=nano.specs --specs=nosys.specs \
        -Wl,--gc-sections -Wl,-Map="$out/$name.map" "$out/sketch/$name.o" \
        "$out/lib/stubs.cpp.o" "$out/libIotp.a" -o "$out/$name.elf"
    echo "== $name for the MKR1000 ($(arm-none-eabi-gcc -dumpversion), cortex-m0plus, stub core)"
    arm-none-eabi-size "$out/$name.elf" | sed "s|$out/||"
    echo "== the library's part of that image (the C library and the C++ wrapper)"
    python3 "$top/tests/unit/firmware/m0/map_sizes.py" "$out/$name.map" libIotp.a
done
