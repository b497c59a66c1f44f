#!/usr/bin/env python3
"""acked_stored.py ACKLOG... < EVENTS_CSV: which events iotsim saw acknowledged (its --ack-log
lines: DEVICE SEQ KIND NAME ...) are missing from iotd's stored events (iotctl events --csv
--all). Prints: ACKED MISSING [DEVICE#SEQ of the first ten missing]."""
import csv
import sys

rows = list(csv.reader(sys.stdin))
head = [h.strip().lower() for h in rows[0]] if rows else []
if "device" not in head or "seq" not in head:
    print(0, -1, "no device/seq columns in", head)
    sys.exit(0)
di, si = head.index("device"), head.index("seq")
stored = {(r[di], r[si]) for r in rows[1:] if len(r) > max(di, si)}
acked = set()
for name in sys.argv[1:]:
    with open(name) as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                acked.add((p[0], p[1]))
missing = sorted(acked - stored)
print(len(acked), len(missing), " ".join(f"{d}#{s}" for d, s in missing[:10]))
