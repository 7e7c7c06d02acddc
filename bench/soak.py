#!/usr/bin/python3
"""Analysis and report of bench/soak.

  soak.py analyze --vip IP --a MON_A --b MON_B --t0 T --t1 T --heal-secs S
      Reads the `ip -ts monitor address` logs of node-a and node-b and prints
      key=value lines about the VIP (seconds; "none" if not observed):
        minutes          length of the loss window [t0, t1]
        false_failovers  times node-b took the VIP during the window (node-a's
                         daemon lives throughout, so each one is false)
        per_min          false_failovers per minute
        a_released       times node-a gave the VIP up during the window
        dual_episodes    times both nodes held the VIP at once
        dual_max         the longest such time
        dual_total       their sum
        none_total       time no node held the VIP
        heal             after the loss ended (t1), time until exactly one node
                         held it ("none" if not within --heal-secs: a
                         persistent split brain, see split_at_end)
        split_at_end     1 if both nodes still held it --heal-secs after t1

  soak.py summary RESULTS.tsv           one line per (impl, cell)
  soak.py merge DB.tsv RESULTS.tsv      replace DB cells (impl, cell) present in RESULTS
  soak.py render DB.tsv RELIABILITY.md  rewrite the result table between the markers

Rows (TSV): stamp impl cell metric value; impl "meta" rows carry the
machine, date and command of a stamp.
"""
import argparse
import datetime
import os
import re
import sys

import report  # bench/report.py: the same TSV format, one column fewer

IMPLS = ["harust", "keepalived", "heartbeat"]
BEGIN = "<!-- soak-results:begin -->"
END = "<!-- soak-results:end -->"
# cell -> harust's target ("" where the issue sets none), in report order
TARGETS = {
    "moderate-20": "",
    "moderate-30": "0",
    "fast-5": "",
    "fast-10": "0",
    "fast-20": "≤ 1 / min",
}
TIMINGS = {
    "fast": "10 ms / 30 ms (keepalived advert_int 0.01)",
    "moderate": "100 ms / 1 s (keepalived advert_int 0.1)",
}

LINE = re.compile(r"^\[(\S+)\] (Deleted )?\d+: \S+\s+inet (\S+)/")


def events(path, vip):
    """[(t, held)] for the VIP in one `ip -ts monitor address` log."""
    out = []
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if m and m.group(3) == vip:
                t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
                out.append((t, m.group(2) is None))
    return out


def analyze(argv):
    ap = argparse.ArgumentParser(prog="soak.py analyze")
    for k in ("vip", "a", "b"):
        ap.add_argument("--" + k, required=True)
    for k in ("t0", "t1", "heal-secs"):
        ap.add_argument("--" + k, type=float, required=True)
    a = ap.parse_args(argv)
    t0, t1 = a.t0, a.t1
    ev = sorted([(t, "a", h) for t, h in events(a.a, a.vip)] + [(t, "b", h) for t, h in events(a.b, a.vip)])
    # The runner checked before t0 that node-a alone held the VIP.
    held = {"a": True, "b": False}
    timeline = [(t0, dict(held))]  # (time, state from then on), transitions only
    counts = {"false_failovers": 0, "a_released": 0}
    for t, node, h in ev:
        if held[node] == h:
            continue  # an address update (RTM_NEWADDR again), not a change
        held[node] = h
        if t0 <= t <= t1:
            if node == "b" and h:
                counts["false_failovers"] += 1
            if node == "a" and not h:
                counts["a_released"] += 1
        timeline.append((max(t, t0), dict(held)))

    def kind(s):
        return {(True, True): "dual", (False, False): "none"}.get((s["a"], s["b"]), "single")

    dual = []
    none_total = 0.0
    state_at_t1 = None
    for i, (t, s) in enumerate(timeline):
        end = timeline[i + 1][0] if i + 1 < len(timeline) else float("inf")
        lo, hi = max(t, t0), min(end, t1)
        if t <= t1 < end:
            state_at_t1 = kind(s)
        if hi <= lo:
            continue
        if kind(s) == "dual":
            dual.append(hi - lo)
        elif kind(s) == "none":
            none_total += hi - lo
    heal = None
    if state_at_t1 == "single":
        heal = 0.0
    else:
        for t, s in timeline:
            if t > t1 and kind(s) == "single":
                heal = t - t1
                break
        if heal is not None and heal > a.heal_secs:
            heal = None
    last = timeline[-1][1]
    minutes = (t1 - t0) / 60
    print("minutes=%.2f" % minutes)
    print("false_failovers=%d" % counts["false_failovers"])
    print("per_min=%.2f" % (counts["false_failovers"] / minutes if minutes > 0 else 0))
    print("a_released=%d" % counts["a_released"])
    print("dual_episodes=%d" % len(dual))
    print("dual_max=%s" % ("%.3f" % max(dual) if dual else "0"))
    print("dual_total=%.3f" % sum(dual))
    print("none_total=%.3f" % none_total)
    print("heal=%s" % ("none" if heal is None else "%.3f" % heal))
    print("split_at_end=%d" % (1 if kind(last) == "dual" and heal is None else 0))


def load(path):
    return report.load(path, width=5)


def cells(rows):
    """(impl, cell) -> {metric: [values]} (errors and notes included)."""
    out = {}
    for st, impl, cell, metric, value in rows:
        if impl != "meta":
            out.setdefault((impl, cell), {}).setdefault(metric, []).append(value)
    return out


def summary(argv):
    for (impl, cell), m in sorted(cells(load(argv[0])).items()):
        keys = ("false_failovers", "per_min", "dual_max", "heal", "split_at_end", "end_holder", "error", "note")
        print("%-10s %-12s %s" % (impl, cell, " ".join("%s=%s" % (k, ",".join(m[k])) for k in keys if k in m)))


def merge(argv):
    db, new = load(argv[0]), load(argv[1])
    fresh = {(r[1], r[2]) for r in new if r[1] != "meta"}
    stamps = {r[0] for r in new}
    kept = [r for r in db if (r[0] not in stamps if r[1] == "meta" else (r[1], r[2]) not in fresh)]
    used = {r[0] for r in kept + new if r[1] != "meta"}
    report.save(argv[0], [r for r in kept + new if r[1] != "meta" or r[0] in used])


def ms(v):
    return "%.0f ms" % (float(v) * 1000) if float(v) < 10 else "%.1f s" % float(v)


def fmt(m, what):
    if m is None:
        return "not run"
    if "error" in m:
        return "**failed**: " + m["error"][0]
    one = {k: v[0] for k, v in m.items()}
    if what == "ff":
        return "**%s** (%s / min)" % (one["false_failovers"], one["per_min"])
    if what == "dual":
        if one["dual_episodes"] == "0":
            return "none"
        times = "once" if one["dual_episodes"] == "1" else "%s times" % one["dual_episodes"]
        return "%s, longest %s" % (times, ms(one["dual_max"]))
    if what == "heal":
        if one["split_at_end"] == "1":
            return "**never**: both still hold it (persistent split brain)"
        if one["heal"] == "none":
            return "no single holder (VIP on %s)" % one.get("end_holder", "?")
        return "at once" if float(one["heal"]) == 0 else ms(one["heal"])
    if what == "none":
        return ms(one["none_total"]) if float(one["none_total"]) > 0 else "0"
    raise ValueError(what)


def render(argv):
    rows = load(argv[0])
    c = cells(rows)
    meta = {}
    for st, impl, _, k, v in rows:
        if impl == "meta":
            meta.setdefault(st, {})[k] = v
    out = [BEGIN, ""]
    order = [k for k in TARGETS] + sorted({cell for _, cell in c if cell not in TARGETS})
    for cell in order:
        if not any((i, cell) in c for i in IMPLS):
            continue
        timing, loss = cell.split("-")
        mins = next((c[(i, cell)]["minutes"][0] for i in IMPLS if (i, cell) in c and "minutes" in c[(i, cell)]), "?")
        out.append("**%s %% loss each way, keepalive %s**, %s minutes:" % (loss, TIMINGS.get(timing, timing), mins))
        out.append("")
        out.append("| | harust | keepalived 2.2.7 | heartbeat 3.0.6 | harust's target |")
        out.append("|---|---|---|---|---|")
        for label, what, target in (
            ("false failovers (per minute)", "ff", TARGETS.get(cell, "")),
            ("both nodes held the VIP", "dual", ""),
            ("no node held the VIP, in all", "none", ""),
            ("loss ends → one holder", "heal", "within one keepalive"),
        ):
            cols = " | ".join(fmt(c.get((i, cell)), what) for i in IMPLS)
            out.append("| %s | %s | %s |" % (label, cols, target))
        notes = [n for i in IMPLS for n in c.get((i, cell), {}).get("note", [])]
        if notes:
            out.append("")
            out.append("Notes: " + "; ".join(notes) + ".")
        out.append("")
    for st in sorted({r[0] for r in rows if r[1] != "meta"}):
        m = meta.get(st, {})
        out.append("Run %s: %s, `%s`; side by side: %s; load %s; harust %s, %s, heartbeat %s."
                   % (st, m.get("date", "?"), m.get("command", "?"), m.get("side_by_side", "?"),
                      m.get("loadavg", "?"), m.get("harust", "?"), m.get("keepalived", "?"),
                      m.get("heartbeat", "?")))
        out.append("Machine: %s." % m.get("machine", "?"))
        out.append("")
    out.append(END)
    with open(argv[1]) as f:
        doc = f.read()
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + "\n".join(out) + doc[doc.index(END) + len(END):]
    else:
        sys.exit("%s: no %s ... %s markers" % (argv[1], BEGIN, END))
    with open(argv[1], "w") as f:
        f.write(doc)


if __name__ == "__main__":
    cmds = {"analyze": analyze, "summary": summary, "merge": merge, "render": render}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])
