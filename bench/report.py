#!/usr/bin/python3
"""Aggregate bench/failover results and write docs/BENCHMARKS.md.

Rows (TSV): stamp impl scenario run metric value
  impl "meta" rows carry the machine/date/command of a stamp.

  report.py summary RESULTS.tsv          medians to stdout
  report.py merge DB.tsv RESULTS.tsv     replace DB cells (impl, scenario) present in RESULTS
  report.py render DB.tsv OUT.md         write the markdown report
"""
import os
import statistics
import sys

IMPLS = ["harust", "keepalived", "heartbeat", "floor"]
RIVALS = ["keepalived", "heartbeat"]
# scenario -> [(metric, label, unit)], the first one is the headline number
METRICS = {
    "kill9-fast": [("from_event", "kill -9 → client served by B (10 ms / 30 ms)", "ms"),
                   ("outage", "  client gap: last A answer → first B answer", "ms"),
                   ("stable", "  … until B's answers no longer flip back", "ms")],
    "kill9-slow": [("from_event", "kill -9 → client served by B (1 s / 3 s)", "ms"),
                   ("outage", "  client gap: last A answer → first B answer", "ms")],
    "kill9-64": [("from_event", "kill -9, 64 addresses → client served by B on the first (100 ms / 1 s)", "ms"),
                 ("spread", "  B's first address → its 64th (ip -ts monitor)", "ms"),
                 ("last_addr", "  kill -9 → B's 64th address", "ms"),
                 ("outage", "  client gap: last A answer → first B answer", "ms")],
    "kill9-mod": [("from_event", "kill -9 → client served by B (100 ms / 1 s; default settings: predicted ≈ deadtime, 1 s)", "ms"),
                  ("outage", "  client gap: last A answer → first B answer", "ms")],
    "kill9-quorum": [("from_event", "kill -9 with quorum on (witness) → client served by B (100 ms / 1 s; "
                      "predicted deadtime + release bound = 1 s + (0.5 + 2 × 0.1 + 2) s = 3.7 s)", "ms"),
                     ("outage", "  client gap: last A answer → first B answer", "ms")],
    "term": [("outage", "graceful stop: last A answer → first B answer", "ms"),
             ("from_event", "  stop issued → client served by B", "ms"),
             ("lost", "  failed client requests (2 ms probe)", "")],
    "failback": [("from_up", "failback: A up (first HA packet) → client served by A", "ms"),
                 ("from_event", "  A's daemon started → client served by A", "ms"),
                 ("up_after_start", "  A's daemon started → A's first HA packet", "ms"),
                 ("outage", "  client gap: last B answer → first A answer", "ms"),
                 ("stable", "  A's daemon started → A's answers no longer interrupted", "ms"),
                 ("flips", "  answer changes after the first A answer (within 0.5 s)", "")],
    "idle": [("cpu_pct_a", "idle CPU, active node (% of one core, 10 ms keepalive)", "%"),
             ("rss_kb_a", "idle RSS, active node (sum of its processes)", "kB"),
             ("cpu_pct_b", "idle CPU, passive node", "%"),
             ("rss_kb_b", "idle RSS, passive node", "kB"),
             ("procs_a", "  processes per node", "")],
    "idle-seed": [("cpu_pct_a", "idle CPU, active node (% of one core, seed timings: keepalive 2 s)", "%"),
                  ("cpu_pct_b", "idle CPU, passive node", "%"),
                  ("rss_kb_a", "idle RSS, active node", "kB")],
    "start": [("from_event", "both started together → client served by A (10 ms / 30 ms)", "ms"),
              ("stable", "  … until A's answers no longer flip", "ms"),
              ("flips", "  answer changes after the first A answer (within 0.5 s)", "")],
    "standby": [("outage", "standby of A: last A answer → first B answer", "ms"),
                ("from_event", "  standby command started → client served by B", "ms"),
                ("cmd", "  standby command's own run time", "ms"),
                ("lost", "  failed client requests (2 ms probe)", ""),
                ("flips", "  answer changes after the first B answer (within 0.5 s)", "")],
    "takeover": [("outage", "takeover by A: last B answer → first A answer", "ms"),
                 ("from_event", "  takeover command started → client served by A", "ms"),
                 ("cmd", "  takeover command's own run time", "ms"),
                 ("lost", "  failed client requests (2 ms probe)", ""),
                 ("flips", "  answer changes after the first A answer (within 0.5 s)", "")],
}
SCENARIOS = list(METRICS)
# "floor" is bench/idle_floor.rs: no HA daemon, one beat sent and one read
# per keepalive, the least any heartbeat node costs at idle
FLOOR_SCENARIOS = ("idle", "idle-seed")
# (scenario, metric, limit, unit in DB, text)
TARGETS = [
    ("kill9-fast", "from_event", 0.035, "unplanned failover at 10 ms / 30 ms, median ≤ 35 ms"),
    ("kill9-64", "spread", 0.010, "64 addresses appear on takeover within 10 ms of each other (median)"),
    ("term", "outage", 0.010, "graceful stop, median ≤ 10 ms"),
    ("failback", "from_up", 0.050, "failback ≤ 50 ms after the returning node is up (median)"),
    ("idle", "cpu_pct_a", 0.3, "idle CPU at keepalive 10 ms ≤ 0.3 % of one core (median)"),
    ("idle", "rss_kb_a", 6144, "RSS ≤ 6 MiB (6144 kB, median)"),
    ("idle", "cpu_pct_a", "keepalived", "idle CPU at keepalive 10 ms ≤ keepalived's master (active node, median, same run)"),
    ("idle", "cpu_pct_b", "keepalived:cpu_pct_a", "idle CPU at keepalive 10 ms, passive node ≤ keepalived's master (median, same run)"),
    ("standby", "outage", 0.010, "standby (D-Bus Standby on A): client outage, median ≤ 10 ms"),
    ("takeover", "outage", 0.010, "takeover back (D-Bus Takeover on A): client outage, median ≤ 10 ms"),
]
# Hand-written reading of the latest run (why a target is missed, oddities),
# placed under the targets table.
NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")


def load(path, width=6):
    """The rows of a results TSV with `width` columns (others are skipped)."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) == width:
                    rows.append(p)
    except FileNotFoundError:
        pass
    return rows


def save(path, rows):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")


def cells(rows):
    """(impl, scen) -> {"vals": {metric: [floats]}, "errors": [str], "notes": [str], "runs": set}"""
    out = {}
    for st, impl, scen, run, metric, value in rows:
        if impl == "meta":
            continue
        c = out.setdefault((impl, scen), {"vals": {}, "errors": [], "notes": [], "runs": set()})
        if metric == "error":
            c["errors"].append(value)
        elif metric == "note":
            c["notes"].append(value)
        elif value not in ("none", ""):
            try:
                c["vals"].setdefault(metric, []).append(float(value))
                c["runs"].add(run)
            except ValueError:
                pass
    return out


def stats(vals):
    """median, p90 (nearest rank), max, n"""
    if not vals:
        return None
    s = sorted(vals)
    p90 = s[max(0, -(-9 * len(s) // 10) - 1)]
    return statistics.median(s), p90, s[-1], len(s)


def fmt_num(v, unit):
    if unit == "ms":
        return "%.0f" % (v * 1000) if v * 1000 >= 10 else "%.1f" % (v * 1000)
    if unit == "%":
        return "%.2f" % v
    return "%.0f" % v


def short_err(e):
    return "not built" if "not built" in e else "**failed** (see notes)"


def fmt_cell(c, metric, unit):
    if c is None:
        return "not run"
    s = stats(c["vals"].get(metric, []))
    if s is None:
        if c["errors"]:
            return short_err(c["errors"][0])
        return "–"
    med, p90, hi, n = s
    txt = "%s (p90 %s, max %s) n=%d" % (fmt_num(med, unit), fmt_num(p90, unit), fmt_num(hi, unit), n)
    if c["errors"]:
        txt += " (%d failed)" % len(c["errors"])
    return txt


def floor_cell(cs, scen, metric, unit):
    """The bare beat loop's cell: measured for the idle scenarios only."""
    if scen not in FLOOR_SCENARIOS:
        return "n/a"
    return fmt_cell(cs.get(("floor", scen)), metric, unit)


def ratio(cs, impl_a, impl_b, scen, metric):
    a, b = cs.get((impl_a, scen)), cs.get((impl_b, scen))
    if not a or not b:
        return "–"
    sa, sb = stats(a["vals"].get(metric, [])), stats(b["vals"].get(metric, []))
    if not sa or not sb or sb[0] == 0:
        return "–"
    return "%.2f×" % (sa[0] / sb[0])


def summary(argv):
    cs = cells(load(argv[0]))
    for (impl, scen), c in sorted(cs.items()):
        if c["errors"] and not c["vals"]:
            print("%-10s %-10s FAILED: %s" % (impl, scen, "; ".join(sorted(set(c["errors"])))))
            continue
        for metric, _label, unit in METRICS.get(scen, []):
            if metric in c["vals"] or c["errors"]:
                has = bool(c["vals"].get(metric))
                print("%-10s %-10s %-14s %s%s" % (impl, scen, metric, fmt_cell(c, metric, unit),
                                                  " " + unit if has and unit not in ("", "%") else ""))
    return 0


def merge(argv):
    db, new = load(argv[0]), load(argv[1])
    touched = {(r[1], r[2]) for r in new if r[1] != "meta"}
    kept = [r for r in db if r[1] != "meta" and (r[1], r[2]) not in touched]
    stamps = {r[0] for r in kept} | {r[0] for r in new}
    meta = [r for r in db if r[1] == "meta" and r[0] in stamps and r[0] not in {x[0] for x in new}]
    save(argv[0], meta + kept + new)
    return 0


def render(argv):
    rows = load(argv[0])
    cs = cells(rows)
    meta = {}
    for st, impl, _s, _r, key, value in rows:
        if impl == "meta":
            meta.setdefault(st, {})[key] = value
    used = {}  # stamp -> cells measured with it
    for st, impl, scen, *_ in rows:
        if impl != "meta":
            used.setdefault(st, set()).add("%s/%s" % (impl, scen))
    o = []
    w = o.append
    w("# Benchmarks: harust vs keepalived vs heartbeat\n")
    w("Generated by `bench/report.py` from `docs/bench-results.tsv`; regenerate with `bench/failover` "
      "(see *How to run*). All three implementations run in the same throw-away network namespaces "
      "(bridge + nodes A, B + client C, veth, 198.18.2.0/24), with the same client probe. The *floor* "
      "column is no HA daemon: `bench/idle_floor.rs` wakes once per keepalive, reads one datagram and "
      "sends one beat of heartbeat's size with its two HMAC-SHA1s, the least any node of a heartbeat "
      "cluster pays at idle (idle scenarios only). Cells are "
      "**median (p90, max) n=runs**, p90 by nearest rank (with fewer than 10 runs it is the max); ratios are harust median / rival median (lower is better for harust).\n")
    w("## Runs\n")
    for st in sorted(meta):
        m = meta[st]
        w("- `%s`: %s, %s; CPU %s; load average %s. Command: `%s`. Versions: keepalived `%s`, heartbeat `%s`, harust `%s`. Cells: %s." % (
            st, m.get("date", "?"), m.get("machine", "?"), m.get("cpu", "?"),
            m.get("loadavg", "not recorded"), m.get("command", "?").strip(),
            m.get("keepalived", "?"), m.get("heartbeat", "?"), m.get("harust", "?"),
            ", ".join(sorted(used.get(st, [])))))
    w("")
    w("## Targets (harust)\n")
    w("| target | harust | keepalived | heartbeat | floor | verdict |")
    w("|---|---|---|---|---|---|")
    for scen, metric, limit, text in TARGETS:
        unit = next(u for m, _l, u in METRICS[scen] if m == metric)
        h = cs.get(("harust", scen))
        s = stats(h["vals"].get(metric, [])) if h else None
        rival = None
        if isinstance(limit, str):
            # a rival's median as the limit: "impl" (same metric) or "impl:metric"
            r_impl, _, r_metric = limit.partition(":")
            rc = cs.get((r_impl, scen))
            rs = stats(rc["vals"].get(r_metric or metric, [])) if rc else None
            rival, limit = r_impl, (rs[0] if rs else None)
        if s is None or limit is None:
            verdict = "NOT MEASURED" + (" (harust %s)" % short_err(h["errors"][0]) if h and h["errors"] else "")
        else:
            verdict = "%s: median %s %s %s %s%s" % (
                "**PASS**" if s[0] <= limit else "**MISS**", fmt_num(s[0], unit),
                "≤" if s[0] <= limit else ">", "%g" % (limit * 1000 if unit == "ms" else limit),
                unit or "", " (%s)" % rival if rival else "")
        w("| %s | %s | %s | %s | %s | %s |" % (text, fmt_cell(h, metric, unit) if h else "not run",
                                               fmt_cell(cs.get(("keepalived", scen)), metric, unit),
                                               fmt_cell(cs.get(("heartbeat", scen)), metric, unit),
                                               floor_cell(cs, scen, metric, unit), verdict))
    w("")
    if os.path.exists(NOTES):
        with open(NOTES) as f:
            w(f.read())
    w("## Results\n")
    w("| scenario | metric | unit | harust | keepalived 2.2.7 | heartbeat 3.0.6 | floor | harust/keepalived | harust/heartbeat |")
    w("|---|---|---|---|---|---|---|---|---|")
    for scen in SCENARIOS:
        for metric, label, unit in METRICS[scen]:
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                scen, label, unit,
                fmt_cell(cs.get(("harust", scen)), metric, unit),
                fmt_cell(cs.get(("keepalived", scen)), metric, unit),
                fmt_cell(cs.get(("heartbeat", scen)), metric, unit),
                floor_cell(cs, scen, metric, unit),
                ratio(cs, "harust", "keepalived", scen, metric),
                ratio(cs, "harust", "heartbeat", scen, metric)))
    notes = [(k, n) for k, c in sorted(cs.items()) for n in sorted(set(c["notes"]))]
    errs = [(k, e) for k, c in sorted(cs.items()) for e in sorted(set(c["errors"]))]
    if notes or errs:
        w("\nNotes and failures recorded by the harness:\n")
        for (impl, scen), n in notes:
            w("- %s / %s: %s" % (impl, scen, n))
        byerr = {}
        for (impl, scen), e in errs:
            byerr.setdefault((impl, e), []).append(scen)
        for (impl, e), scens in byerr.items():
            w("- %s / %s: %s" % (impl, ", ".join(scens), e))
    w("")
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "methods.md")) as f:
        w(f.read())
    with open(argv[1], "w") as f:
        f.write("\n".join(o))
    return 0


if __name__ == "__main__":
    cmds = {"summary": summary, "merge": merge, "render": render}
    if len(sys.argv) < 3 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]))
