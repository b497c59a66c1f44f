#!/usr/bin/env bash
# avr_build.sh TOP OUT - build the Arduino library and its Thermometer example for an Arduino
# Mega 2560 with Debian's AVR toolchain (gcc-avr, avr-libc) and Arduino core (arduino-core-avr),
# the way the Arduino IDE does (platform.txt's flags, the .ino behind #include <Arduino.h>), and
# link the image. The library, its wrapper and the sketch must compile without a warning; the
# image must fit the board (256 KB of flash, 8 KB of RAM with room left for the stack).
# The network there is IotpEspAtClient: an ESP8266 AT modem on Serial1, all in the library.
set -euo pipefail
top=$1 out=$2
core=${ARDUINO_AVR:-/usr/share/arduino/hardware/arduino/avr}
mcu=atmega2560
rm -rf "$out"
mkdir -p "$out/core" "$out/lib" "$out/sketch"
"$top/firmware/arduino/make_library.sh" "$top" "$out"
lib=$out/Iotp
defs=(-mmcu=$mcu -DF_CPU=16000000L -DARDUINO=10819 -DARDUINO_AVR_MEGA2560 -DARDUINO_ARCH_AVR)
inc=(-I"$core/cores/arduino" -I"$core/variants/mega")
common=(-Os -g -ffunction-sections -fdata-sections "${defs[@]}" "${inc[@]}")
cflags=("${common[@]}" -std=gnu11)
cxxflags=("${common[@]}" -std=gnu++11 -fno-exceptions -fno-threadsafe-statics)
strict=(-Wall -Wextra -Werror)

# The core, as the IDE builds it (its own warnings are not ours). Debian's WString.cpp wants
# DECIMAL_DIG, which gcc-avr 5's <float.h> gives C only: the compiler's own value stands in.
for f in "$core"/cores/arduino/*.c "$core"/cores/arduino/*.cpp "$core"/cores/arduino/*.S; do
    o=$out/core/$(basename "$f").o
    case $f in
    *.c) avr-gcc "${cflags[@]}" -c "$f" -o "$o" ;;
    *.cpp) avr-g++ "${cxxflags[@]}" -DDECIMAL_DIG=__DECIMAL_DIG__ -c "$f" -o "$o" ;;
    *.S) avr-gcc -x assembler-with-cpp "${common[@]}" -c "$f" -o "$o" ;;
    esac
done
avr-gcc-ar rcs "$out/core.a" "$out"/core/*.o

# The library: every source in src/, its own directory on the include path.
for f in "$lib"/src/*.c "$lib"/src/*.cpp; do
    o=$out/lib/$(basename "$f").o
    case $f in
    *.c) avr-gcc "${cflags[@]}" "${strict[@]}" -I"$lib/src" -c "$f" -o "$o" ;;
    *.cpp) avr-g++ "${cxxflags[@]}" "${strict[@]}" -I"$lib/src" -c "$f" -o "$o" ;;
    esac
done

# The sketch: the IDE puts #include <Arduino.h> in front of the .ino.
for ex in "$lib"/examples/*/; do
    name=$(basename "$ex")
    { echo '#include <Arduino.h>'; echo "#line 1 \"$name.ino\""; cat "$ex/$name.ino"; } \
        >"$out/sketch/$name.cpp"
    avr-g++ "${cxxflags[@]}" "${strict[@]}" -I"$lib/src" -I"$ex" -c "$out/sketch/$name.cpp" \
        -o "$out/sketch/$name.o"
    avr-gcc -mmcu=$mcu -Os -Wl,--gc-sections "$out/sketch/$name.o" "$out"/lib/*.o "$out/core.a" \
        -lm -o "$out/$name.elf"
    echo "== $name for the Arduino Mega 2560 ($(avr-gcc -dumpversion), $mcu)"
    avr-size "$out/$name.elf" | sed "s|$out/||"
    read -r text data bss _ < <(avr-size "$out/$name.elf" | tail -1)
    echo "flash $((text + data)) of 253952, RAM $((data + bss)) of 8192"
    [ $((text + data)) -le 253952 ] || { echo "$name: over the flash" >&2; exit 1; }
    [ $((data + bss)) -le 7168 ] || { echo "$name: RAM leaves under 1 KB of stack" >&2; exit 1; }
done
