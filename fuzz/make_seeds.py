#!/usr/bin/env python3
"""Writes the committed seed corpus under fuzz/seeds/<target>/.

decode: distinct UDP payloads from the captures in tests/data/vectors
        (one per message type, format and capture, so the corpus stays
        small), all of which authenticate with one of the target's keys.
hacf, authkeys, haresources: the tutorial's files (tests/data/seed) and
        the packaged examples (packaging/examples).
engine: a script in which node-b's status beats bring it up
        (the same bytes as peer_beats() in tests/fuzz_prop.rs).

Run from anywhere: python3 fuzz/make_seeds.py. Output is deterministic.
"""

import hashlib
import pathlib
import re
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"


def udp_payloads(pcap):
    data = pcap.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic == 0xA1B2C3D4, f"{pcap}: not a little-endian microsecond pcap"
    linktype = struct.unpack("<I", data[20:24])[0]
    assert linktype == 1, f"{pcap}: link type {linktype}, expected Ethernet"
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack("<I", data[pos + 8 : pos + 12])[0]
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        eth_type = struct.unpack("!H", frame[12:14])[0]
        if eth_type == 0x0800:
            ihl = (frame[14] & 15) * 4
            if frame[14 + 9] != 17:
                continue
            udp = 14 + ihl
        elif eth_type == 0x86DD:
            if frame[14 + 6] != 17:
                continue
            udp = 14 + 40
        else:
            continue
        ulen = struct.unpack("!H", frame[udp + 4 : udp + 6])[0]
        yield frame[udp + 8 : udp + ulen]


def write(target, name, content):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(content)


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    seen = set()
    for pcap in sorted((ROOT / "tests/data/vectors").glob("*.pcap")):
        for payload in udp_payloads(pcap):
            if payload[:4] not in (b"###\n", b">>>\n"):
                continue
            m = re.search(rb"\bt=([^,\n]*)", payload)
            kind = m.group(1).decode("ascii", "replace") if m else "none"
            key = (pcap.stem, payload[:1], kind)
            if key in seen:
                continue
            seen.add(key)
            digest = hashlib.sha1(payload).hexdigest()[:12]
            fmt = "ns" if payload.startswith(b"#") else "classic"
            safe = re.sub(r"[^A-Za-z0-9_-]", "_", kind)
            write("decode", f"{pcap.stem}-{fmt}-{safe}-{digest}", payload)
    for target, files in {
        "hacf": ["ha.cf"],
        "authkeys": ["authkeys"],
        "haresources": ["haresources"],
    }.items():
        for f in files:
            write(target, f"seed-{f}", (ROOT / "tests/data/seed" / f).read_bytes())
            write(target, f"example-{f}", (ROOT / "packaging/examples" / f).read_bytes())
    header = bytes(10)
    beat = bytes([2, 0, 0, 0, 4, 0, 1, 2, 8, 0, 12, 1, 0, 2, 0, 0, 100])
    write("engine", "peer-beats", header + beat * 20)
    write("engine", "peer-beats-then-standby", header + beat * 20 + bytes([8, 0, 0, 7]))


if __name__ == "__main__":
    main()
