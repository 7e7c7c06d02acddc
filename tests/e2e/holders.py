#!/usr/bin/env python3
"""tests/e2e/holders.py: who held an address when, from `ip -ts -o monitor
address` logs taken on each node.

    holders.py ADDR T0 T_END HELD_AT_T0 NODE=MONITOR_LOG...

T0 and T_END are local times as `date +%Y-%m-%dT%H:%M:%S.%6N` prints them
(the monitor's own format); HELD_AT_T0 is a comma-separated list of the
nodes holding ADDR at T0 (may be empty). Prints, in milliseconds from T0:

    both_ms N          total time during which two or more nodes held ADDR
    added NODE MS      each time NODE gained ADDR
    deleted NODE MS    each time NODE lost ADDR

Lines outside [T0, T_END] are ignored: the monitors start just before T0.
"""

import re
import sys
from datetime import datetime

LINE = re.compile(r"^\[(?P<ts>[0-9T:.-]+)\] (?P<deleted>Deleted )?\d+: \S+\s+inet6? (?P<addr>[0-9a-f.:]+)/")


def ms(a, b):
    return (b - a).total_seconds() * 1000.0


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    addr, t0, t_end, initial = argv[1], datetime.fromisoformat(argv[2]), datetime.fromisoformat(argv[3]), argv[4]
    held = {n for n in initial.split(",") if n}
    events = []
    for spec in argv[5:]:
        node, path = spec.split("=", 1)
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if not m or m["addr"] != addr:
                    continue
                t = datetime.fromisoformat(m["ts"])
                if t0 <= t <= t_end:
                    events.append((t, node, not m["deleted"]))
    events.sort()
    both = 0.0
    last = t0
    for t, node, added in events:
        if len(held) > 1:
            both += ms(last, t)
        last = t
        print(f"{'added' if added else 'deleted'} {node} {ms(t0, t):.0f}")
        (held.add if added else held.discard)(node)
    if len(held) > 1:
        both += ms(last, t_end)
    print(f"both_ms {both:.0f}")


if __name__ == "__main__":
    main(sys.argv)
