#!/usr/bin/python3
"""Decode heartbeat 3.0.x (and harust) UDP/694 messages from a pcap.

usage: hbdecode.py [-k N:METHOD[:KEY]] [--flow [--status] [--acks]] [--counts] [--rexmit] FILE.pcap

Default output: every message, every field, both authenticators checked.
--flow:   one line per message (status beats only when `st` changes, acks
          only with --acks, status always with --status).
--counts: how many messages of each type each node sent, and how many
          sequenced messages went on the wire more than once (resent).
--rexmit: every NS_rexmit request and whether (and how fast) the asked
          node resent that seq or answered NS_nak_rexmit.

Wire format (docs/INTEROP-NOTES.md, PROTOCOL.md §1.2-1.3):
  netstring: "###\\n" { LEN ":(" T ")" NAME "=" VALUE "," } "%%%\\n" LEN ":" N " " HEX ","
  classic:   ">>>\\n" { ["(" T ")"] NAME "=" VALUE "\\n" } "<<<\\n"
The trailer authenticates the bytes "###\\n".."%%%\\n"; the inner `auth`
field authenticates the classic text of every other field.
Methods: sha1 = HMAC-SHA1, md5 = HMAC-MD5, crc = CRC-32 (poly 0x04C11DB7,
init 0, MSB first, xorout 0xFFFFFFFF, printed %lx).
"""
import base64
import collections
import hashlib
import hmac
import struct
import sys


def _crc_table():
    tab = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
            c &= 0xFFFFFFFF
        tab.append(c)
    return tab


CRCTAB = _crc_table()


def hb_auth(method, key, data):
    if method == "sha1":
        return hmac.new(key.encode(), data, hashlib.sha1).hexdigest()
    if method == "md5":
        return hmac.new(key.encode(), data, hashlib.md5).hexdigest()
    if method == "crc":
        crc = 0
        for b in data:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ CRCTAB[((crc >> 24) ^ b) & 0xFF]
        return "%x" % (~crc & 0xFFFFFFFF)
    raise ValueError("unknown auth method %r" % method)


def parse_netstring(buf, pos=0):
    """-> (fields, end). fields: [(type, name, value)]."""
    if buf[pos:pos + 4] != b"###\n":
        raise ValueError("no ###")
    pos += 4
    fields = []
    while buf[pos:pos + 4] != b"%%%\n":
        colon = buf.index(b":", pos)
        ln = int(buf[pos:colon])
        item = buf[colon + 1:colon + 1 + ln]
        if buf[colon + 1 + ln:colon + 2 + ln] != b",":
            raise ValueError("netstring without ','")
        pos = colon + 2 + ln
        if item[:1] != b"(" or item[2:3] != b")":
            raise ValueError("field without (type)")
        ftype = item[1] - 48
        eq = item.index(b"=", 3)
        name, val = item[3:eq].decode(), item[eq + 1:]
        if ftype in (2, 5):
            val, _ = parse_netstring(val)
        fields.append((ftype, name, val))
    return fields, pos + 4


def parse_classic(buf):
    lines = buf.decode(errors="replace").split("\n")
    if lines[0] != ">>>":
        raise ValueError("no >>>")
    fields = []
    for ln in lines[1:]:
        if ln == "<<<":
            break
        if not ln:
            continue
        name, _, val = ln.partition("=")
        ftype = 0
        if name.startswith("(") and name[2:3] == ")":
            ftype, name = int(name[1]), name[3:]
        fields.append((ftype, name, base64.b64decode(val) if ftype == 1 else val.encode()))
    return fields


def classic_text(fields):
    out = b""
    for ftype, name, val in fields:
        if name == "auth":
            continue
        if ftype:
            out += b"(%d)" % ftype
        out += name.encode() + b"="
        if ftype == 0:
            out += val.replace(b"\n", b"\x13")
        elif ftype in (1, 4):
            out += base64.b64encode(val)
        else:
            raise ValueError("type %d" % ftype)
        out += b"\n"
    return out


def decode(payload, keys):
    """-> (info, fields). info has format, trailer_ok, field_ok (None = unchecked)."""
    info = {"len": len(payload), "trailer_ok": None, "field_ok": None}
    if payload.startswith(b"###\n"):
        info["format"] = "netstring"
        fields, end = parse_netstring(payload)
        tr = payload[end:]
        c = tr.index(b":")
        num, _, digest = tr[c + 1:c + 1 + int(tr[:c])].decode().partition(" ")
        if int(num) in keys:
            info["trailer_ok"] = hb_auth(*keys[int(num)], payload[:end]) == digest
    elif payload.startswith(b">>>\n"):
        info["format"] = "classic"
        fields = parse_classic(payload)
    else:
        info["format"] = "unknown"
        return info, []
    for ftype, name, val in fields:
        if name == "auth" and ftype == 0:
            num, _, digest = val.decode().partition(" ")
            if int(num) in keys:
                try:
                    info["field_ok"] = hb_auth(*keys[int(num)], classic_text(fields)) == digest
                except ValueError:
                    pass
    return info, fields


def pcap_packets(path):
    """Yields (ts, src_ip, dst_ip, udp_payload) for UDP/694 packets."""
    with open(path, "rb") as f:
        gh = f.read(24)
        if len(gh) < 24:
            return
        magic = struct.unpack("<I", gh[:4])[0]
        end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(end + "I", gh[20:24])[0]
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                return
            sec, frac, incl, _ = struct.unpack(end + "IIII", ph)
            data = f.read(incl)
            if len(data) < incl:
                return
            if linktype == 1:
                off, et = 14, struct.unpack("!H", data[12:14])[0]
                if et == 0x8100:
                    off, et = 18, struct.unpack("!H", data[16:18])[0]
                if et != 0x0800:
                    continue
                ip = data[off:]
            elif linktype == 113:
                ip = data[16:]
            elif linktype == 101:
                ip = data
            else:
                raise SystemExit("unsupported linktype %d" % linktype)
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            sport, dport, ulen = struct.unpack("!HHH", ip[ihl:ihl + 6])
            if 694 not in (sport, dport):
                continue
            yield (sec + frac / (1e9 if nano else 1e6), ".".join(map(str, ip[12:16])),
                   ".".join(map(str, ip[16:20])), ip[ihl + 8:ihl + ulen])


def text(ftype, val):
    if ftype == 0:
        return val.decode(errors="replace")
    if ftype == 1:
        return "<%d bytes %s>" % (len(val), val.hex())
    return repr(val)


HIDE = {"srcuuid", "destuuid", "hg", "ts", "ld", "ttl", "auth"}


def rexmit_report(events):
    """Pairs each NS_rexmit with the answer from the node it asked."""
    asked = set()
    for i, (ts, src, typ, d) in enumerate(events):
        if typ != "NS_rexmit":
            continue
        holder = d.get("dest", "?")
        for s in range(int(d.get("firstseq", "0")), int(d.get("lastseq", "0")) + 1):
            if (src, holder, s) in asked:
                continue
            asked.add((src, holder, s))
            ans = "NOT ANSWERED"
            for ts2, src2, typ2, d2 in events[i + 1:]:
                if src2 != holder:
                    continue
                if typ2 == "NS_nak_rexmit" and d2.get("firstseq") == "%x" % s:
                    ans = "nak (%s) after %.0f ms" % (d2.get("info"), (ts2 - ts) * 1000)
                    break
                if d2.get("seq") == "%x" % s:
                    ans = "resent (t=%s) after %.0f ms" % (typ2, (ts2 - ts) * 1000)
                    break
            print("%9.3f %s asked %s for seq %d (0x%x): %s" % (ts, src, holder, s, s, ans))
    if not asked:
        print("no NS_rexmit requests on the wire")


def main(argv):
    keys, files, mode, show_status, show_acks = {}, [], "full", False, False
    it = iter(argv)
    for a in it:
        if a == "-k":
            spec = next(it).split(":", 2)
            keys[int(spec[0])] = (spec[1], spec[2] if len(spec) > 2 else "")
        elif a == "--flow":
            mode = "flow"
        elif a == "--counts":
            mode = "counts"
        elif a == "--rexmit":
            mode = "rexmit"
        elif a == "--status":
            show_status = True
        elif a == "--acks":
            show_acks = True
        else:
            files.append(a)
    if not files:
        print(__doc__, file=sys.stderr)
        return 2
    for path in files:
        t0, last_st = None, {}
        counts = collections.Counter()
        seen = set()
        events = []  # (ts, src, typ, dict) for --rexmit
        for ts, sip, dip, payload in pcap_packets(path):
            t0 = t0 or ts
            try:
                info, fields = decode(payload, keys)
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                print("%9.3f %s -> %s UNDECODABLE (%s)" % (ts - t0, sip, dip, e))
                continue
            d = {n: text(t, v) for t, n, v in fields}
            typ, src = d.get("t", "?"), d.get("src", "?")
            # The same message reaches the capture once per ucast target;
            # count it once.
            ident = (src, d.get("seq"), d.get("hg"), typ, d.get("dest"), d.get("ackseq"),
                     d.get("firstseq"), ts if "seq" not in d else None)
            dup = ident in seen
            seen.add(ident)
            if mode == "counts":
                if not dup:
                    counts[(src, typ)] += 1
                elif "seq" in d:
                    counts[(src, "(resent)")] += 1
                continue
            if mode == "rexmit":
                events.append((ts - t0, src, typ, d))
                continue
            auth = "ok" if info["trailer_ok"] or info["field_ok"] else (
                "BAD" if False in (info["trailer_ok"], info["field_ok"]) else "?")
            if mode == "flow":
                if dup and typ != "NS_rexmit":
                    continue
                if typ == "status" and not show_status:
                    if last_st.get(src) == d.get("st"):
                        continue
                    last_st[src] = d.get("st")
                if typ == "NS_ackmsg" and not show_acks:
                    continue
                kv = " ".join("%s=%s" % (n, text(t, v)) for t, n, v in fields
                              if n not in HIDE and n not in ("t", "src"))
                print("%9.3f %-7s %-14s %-16s %s" % (ts - t0, src, typ, "auth=" + auth, kv))
                continue
            print("=" * 78)
            print("+%.3fs %s -> %s %d bytes %s t=%s trailer_ok=%s field_ok=%s"
                  % (ts - t0, sip, dip, info["len"], info["format"], typ,
                     info["trailer_ok"], info["field_ok"]))
            for t, n, v in fields:
                print("   (%d)%-10s = %s" % (t, n, text(t, v)))
        if mode == "counts":
            for (src, typ), n in sorted(counts.items()):
                print("%-8s %-16s %d" % (src, typ, n))
        if mode == "rexmit":
            rexmit_report(events)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
