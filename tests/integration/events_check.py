#!/usr/bin/env python3
"""events_check.py - compare what devices saw acknowledged with what iotd stored.

usage: events_check.py ACK_LOG STORED_JSON_DIR DEVICE...

ACK_LOG: iotsim --ack-log lines "<device> <seq> <EVENT|ALARM> <name> [k=v]...".
STORED_JSON_DIR/<device>.json: `iotctl --json events --device D --limit 10000` output.

Checks, per device: every acknowledged seq is stored exactly once; the stored events are in
strictly increasing seq order (oldest first, as iotctl lists them); nothing is stored that the
device never had acknowledged (with --exit-when-acked every generated event is acknowledged, so
"acknowledged" is "sent"); the stored name and fields are the ones acknowledged. Prints one
summary line per device; exit 1 on the first device that fails (with the differences).
"""
import json
import sys


def main():
    ack_log, stored_dir, devices = sys.argv[1], sys.argv[2], sys.argv[3:]
    acked = {d: {} for d in devices}
    with open(ack_log) as f:
        for line in f:
            w = line.split()
            if len(w) < 4 or w[0] not in acked:
                continue
            dev, seq, name, fields = w[0], int(w[1]), w[3], dict(x.split("=", 1) for x in w[4:])
            prev = acked[dev].get(seq)
            if prev is not None and prev != (name, fields):
                print(f"FAIL {dev}: seq {seq} acknowledged twice with different contents")
                return 1
            acked[dev][seq] = (name, fields)
    bad = False
    for dev in devices:
        with open(f"{stored_dir}/{dev}.json") as f:
            rows = json.load(f)["events"]
        seqs = [r["seq"] for r in rows]
        stored = {}
        for r in rows:
            stored.setdefault(r["seq"], []).append((r["name"], r.get("fields") or {}))
        twice = sorted(s for s, v in stored.items() if len(v) > 1)
        missing = sorted(set(acked[dev]) - set(stored))
        extra = sorted(set(stored) - set(acked[dev]))
        disorder = [(a, b) for a, b in zip(seqs, seqs[1:]) if b <= a]
        differ = sorted(s for s in set(stored) & set(acked[dev]) if stored[s][0] != acked[dev][s])
        ok = not (twice or missing or extra or disorder or differ) and acked[dev]
        print(f"{'ok' if ok else 'FAIL'} {dev}: acked {len(acked[dev])}, stored {len(rows)} "
              f"(seq {seqs[0] if seqs else '-'}..{seqs[-1] if seqs else '-'}), "
              f"twice {twice[:5]}, missing {missing[:5]}, never acked {extra[:5]}, "
              f"out of order {disorder[:5]}, fields differ {differ[:5]}")
        bad |= not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
