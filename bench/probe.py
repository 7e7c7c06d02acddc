#!/usr/bin/python3
"""Client probe for the failover bench and demo (runs inside the client netns).

  probe.py run URL LOG [--interval 0.01] [--timeout 0.2] [--duration 120] [--stop FILE]
      Starts one HTTP GET every INTERVAL seconds *without waiting for the
      previous one* (non-blocking sockets, up to 64 in flight), so a request
      stuck on a dead MAC (timeout) does not blind the probe for its timeout:
      time resolution is INTERVAL. Each finished request is appended to LOG as
          <t_start> <t_done> <answer>
      (wall-clock seconds, CLOCK_REALTIME like bash's $EPOCHREALTIME; answer =
      first word of the page, e.g. node-a, or ERR:timeout / ERR:refused / ...).
      LOG.changes gets one line "<t_done> <answer>" per change of answer.
      Ends after DURATION seconds or as soon as FILE exists (bounded).

  probe.py wait LOG ANSWER SINCE TIMEOUT
      Exit 0 as soon as LOG holds ANSWER from a request started at or after
      SINCE (wall clock), 1 after TIMEOUT seconds.

  probe.py analyze LOG --since T0 --old NODE --new NODE [--up TUP]
      Prints key=value lines (seconds, 3 decimals; "none" if not observed):
        from_event  first good answer of NEW (request started >= T0) minus T0
        outage      that answer minus the last good answer of OLD before it
                    (the client-visible outage; both are t_done)
        from_up     that answer minus TUP (failback: the returning node is up)
        stable      like from_event, but for the first NEW answer after which
                    no other answer was seen (differs when answers flip back)
        flips       changes of answer after the first NEW answer
        lost        failed requests (ERR:*, e.g. refused or timeout) started
                    between T0 and that first NEW answer's request

  probe.py addrs LOG --since T0 --count N
      LOG is `ip -ts monitor address` of the taking node. Prints key=value
      lines (seconds, 3 decimals; "none" if fewer than N were added):
        first_addr  first address added at or after T0, minus T0
        last_addr   the N-th distinct address added, minus T0
        spread      last_addr minus first_addr: how far apart the group's
                    addresses appeared
"""
import errno
import os
import selectors
import socket
import sys
import time


def run(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="probe.py run")
    ap.add_argument("url")
    ap.add_argument("log")
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--timeout", type=float, default=0.2)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--stop", default=None)
    a = ap.parse_args(argv)
    rest = a.url.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    addr = (host, int(port or 80))
    req = ("GET /%s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode()

    sel = selectors.DefaultSelector()
    inflight = {}  # sock -> [t_start, deadline_mono, phase, buf]
    out = open(a.log, "w", buffering=1)
    chg = open(a.log + ".changes", "w", buffering=1)
    last = [None]

    def finish(s, answer):
        st = inflight.pop(s)
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        t = time.time()
        out.write("%.6f %.6f %s\n" % (st[0], t, answer))
        if answer != last[0]:
            chg.write("%.6f %s\n" % (t, answer))
            last[0] = answer

    def start():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        t0 = time.time()
        rc = s.connect_ex(addr)
        inflight[s] = [t0, time.monotonic() + a.timeout, "conn", b""]
        if rc not in (0, errno.EINPROGRESS):
            finish(s, "ERR:" + errno.errorcode.get(rc, str(rc)))
            return
        sel.register(s, selectors.EVENT_WRITE)

    def event(s):
        st = inflight[s]
        if st[2] == "conn":
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                finish(s, "ERR:" + ("refused" if err == errno.ECONNREFUSED else errno.errorcode.get(err, str(err))))
                return
            try:
                s.send(req)
            except OSError as e:
                finish(s, "ERR:" + type(e).__name__)
                return
            st[2] = "read"
            sel.modify(s, selectors.EVENT_READ)
            return
        try:
            chunk = s.recv(4096)
        except OSError as e:
            finish(s, "ERR:" + type(e).__name__)
            return
        if chunk:
            st[3] += chunk
            return
        body = st[3].split(b"\r\n\r\n", 1)[-1].decode(errors="replace").split()
        finish(s, body[0] if body else "ERR:empty")

    end = time.monotonic() + a.duration
    nxt = time.monotonic()
    next_stopcheck = 0.0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if a.stop and now >= next_stopcheck:
            if os.path.exists(a.stop):
                break
            next_stopcheck = now + 0.1
        if now >= nxt:
            if len(inflight) < 64:
                start()
            nxt += a.interval
            if nxt < now:  # we were late (CPU starved): do not burst to catch up
                nxt = now + a.interval
        for s in [s for s, st in inflight.items() if st[1] <= now]:
            finish(s, "ERR:timeout")
        wake = min([nxt] + [st[1] for st in inflight.values()])
        for key, _ in sel.select(max(0.0, wake - time.monotonic())):
            if key.fileobj in inflight:
                event(key.fileobj)
    for s in list(inflight):  # unfinished at the end: not an answer, not logged
        sel.unregister(s)
        s.close()
    out.close()
    chg.close()
    return 0


def load(log):
    rows = []
    try:
        with open(log) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    rows.append((float(p[0]), float(p[1]), p[2]))
    except FileNotFoundError:
        pass
    rows.sort()
    return rows


def wait(argv):
    log, answer, since, timeout = argv[0], argv[1], float(argv[2]), float(argv[3])
    end = time.monotonic() + timeout
    pos = 0
    while time.monotonic() < end:
        try:
            with open(log) as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = ""
        cut = data.rfind("\n") + 1
        pos += len(data[:cut].encode())
        for line in data[:cut].splitlines():
            p = line.split()
            if len(p) == 3 and p[2] == answer and float(p[0]) >= since:
                return 0
        time.sleep(0.01)
    return 1


def analyze(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="probe.py analyze")
    ap.add_argument("log")
    ap.add_argument("--since", type=float, required=True)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--up", type=float, default=None)
    a = ap.parse_args(argv)
    rows = load(a.log)
    res = {"from_event": None, "outage": None, "from_up": None, "stable": None, "flips": None,
           "lost": None}
    first = next((i for i, r in enumerate(rows) if r[0] >= a.since and r[2] == a.new), None)
    if first is not None:
        t_new = rows[first][1]
        res["from_event"] = t_new - a.since
        olds = [r[1] for r in rows[:first] if r[2] == a.old]
        if olds:
            res["outage"] = t_new - max(olds)
        if a.up is not None:
            res["from_up"] = t_new - a.up
        after = rows[first:]
        flips = sum(1 for x, y in zip(after, after[1:]) if x[2] != y[2])
        res["flips"] = flips
        res["lost"] = sum(1 for r in rows[:first] if r[0] >= a.since and r[2].startswith("ERR:"))
        # start of the final run of NEW answers
        k = len(rows) - 1
        while k > first and rows[k - 1][2] == a.new:
            k -= 1
        if rows[-1][2] == a.new:
            res["stable"] = rows[k][1] - a.since
    for k, v in res.items():
        if v is None:
            print("%s=none" % k)
        elif isinstance(v, int):
            print("%s=%d" % (k, v))
        else:
            print("%s=%.3f" % (k, v))
    return 0 if first is not None else 1


def addrs(argv):
    import argparse
    import datetime
    import re
    ap = argparse.ArgumentParser(prog="probe.py addrs")
    ap.add_argument("log")
    ap.add_argument("--since", type=float, required=True)
    ap.add_argument("--count", type=int, required=True)
    a = ap.parse_args(argv)
    # [2026-12-06T00:48:04.248026] 3: eth0    inet 198.18.2.101/24 scope ...
    line_re = re.compile(r"^\[(\S+)\] (?!Deleted)\d+: \S+\s+inet6? (\S+)/")
    seen = {}
    with open(a.log) as f:
        for line in f:
            m = line_re.match(line)
            if not m:
                continue
            # ip prints local time
            t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
            if t >= a.since and m.group(2) not in seen:
                seen[m.group(2)] = t
    times = sorted(seen.values())
    res = {"first_addr": None, "last_addr": None, "spread": None}
    if len(times) >= a.count:
        res["first_addr"] = times[0] - a.since
        res["last_addr"] = times[a.count - 1] - a.since
        res["spread"] = times[a.count - 1] - times[0]
    for k, v in res.items():
        print("%s=none" % k if v is None else "%s=%.4f" % (k, v))
    return 0 if res["spread"] is not None else 1


if __name__ == "__main__":
    cmds = {"run": run, "wait": wait, "analyze": analyze, "addrs": addrs}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]))
