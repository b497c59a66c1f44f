#!/usr/bin/env python3
"""map_sizes.py MAP ARCHIVE - the flash bytes (code and constants) that each object of ARCHIVE
contributes to a linked image, read from the GNU ld map file MAP (after --gc-sections: only
what was kept). Prints one line per object and the total, which is what the caller checks."""
import re
import sys

def main():
    path, archive = sys.argv[1], sys.argv[2]
    text = open(path).read()
    text = text[text.index("Linker script and memory map"):]
    # An input section: " .text.name" then address, size and file, on the same line or the
    # next when the name is long.
    entry = re.compile(r"^ (\.[\w.$]+)\s*\n?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", re.M)
    sizes = {}
    for name, addr, size, origin in entry.findall(text):
        m = re.match(re.escape(archive) + r"\((.+)\)$", origin.split("/")[-1])
        if not m or not name.startswith((".text", ".rodata")) or int(addr, 16) == 0:
            continue
        sizes[m.group(1)] = sizes.get(m.group(1), 0) + int(size, 16)
    for obj in sorted(sizes):
        print("%-24s %6d" % (obj, sizes[obj]))
    print("%-24s %6d" % ("library total", sum(sizes.values())))

main()
