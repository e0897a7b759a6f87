#!/usr/bin/env python3
"""Builds seed inputs for the spanwatch fuzz targets.

Usage: make_seeds.py PCAP_DIR OUT_DIR

Writes OUT_DIR/<target>/<name> for the targets http, mqtt, coap, telnet and dhcp:
hand-built message sequences (spec examples, the shapes the parsers' unit
tests use) and the TCP/UDP payloads of the shared captures, extracted with
tshark. Each seed uses the input layout of src/lib.rs: a config byte, the
number of schedule entries, two bytes per entry (direction, length) and the
payload.

Nothing secret is written: MQTT CONNECT packets that carry a password are
dropped from their stream, HTTP Authorization / Proxy-Authorization lines
are removed, and any stream that still mentions a password, as well as every
Telnet stream with a login dialogue, is skipped.
"""

import os
import re
import subprocess
import sys

MAX_ENTRIES = 32
MAX_LEN = 0x3FFF
MAX_PAYLOAD = 8192
TO_SERVER, TO_CLIENT = 0, 1

# Captures tshark only decodes with a decode-as rule (MANIFEST.tsv).
DECODE_AS = {
    "telnet/telnet-auth-option-on-port21-rawip.pcap": "tcp.port==21,telnet",
    "http/http-query-method-port4711.pcap": "tcp.port==4711,http",
    "http/http-get-to-ssh-port22-nanosecond.pcap": "tcp.port==22,http",
}
SECRET = re.compile(rb"pass|pwd|secret", re.I)
AUTH_LINE = re.compile(rb"^(proxy-)?authorization:[^\n]*\n", re.I | re.M)
# Telnet login prompts: streams that show one carry typed credentials.
LOGIN = re.compile(rb"login|username|password", re.I)


def encode(steps, config=0):
    """steps: [(dir, bytes)] -> one fuzz input (truncated to fit)."""
    merged = []
    for d, b in steps:
        if merged and merged[-1][0] == d:
            merged[-1] = (d, merged[-1][1] + b)
        else:
            merged.append((d, b))
    table, payload = b"", b""
    for d, b in merged[:MAX_ENTRIES]:
        b = b[: min(MAX_LEN, MAX_PAYLOAD - len(payload))]
        if not b:
            break
        table += bytes([(d << 7) | (len(b) >> 8), len(b) & 0xFF])
        payload += b
    return bytes([config, len(table) // 2]) + table + payload


def datagrams(steps, config=0):
    """Like encode, but every step stays one datagram (no merging)."""
    table, payload = b"", b""
    for d, b in steps[:MAX_ENTRIES]:
        if len(payload) + len(b) > MAX_PAYLOAD:
            break
        table += bytes([(d << 7) | (len(b) >> 8), len(b) & 0xFF])
        payload += b
    return bytes([config, len(table) // 2]) + table + payload


def tshark(path, display, fields, decode_as=None):
    cmd = ["tshark", "-n", "-r", path, "-Y", display, "-T", "fields"]
    if decode_as:
        cmd += ["-d", decode_as]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    rows = [line.split(b"\t") for line in out.splitlines()]
    # Tunnelled frames give several values per field: not worth a seed.
    return [r for r in rows if len(r) == len(fields) and all(b"," not in v for v in r)]


def tcp_streams(path, proto, decode_as):
    """{stream: [(dir, bytes)]} in capture order for the TCP streams tshark
    decodes as `proto`; the client is the side that sent the SYN."""
    wanted = {r[0] for r in tshark(path, proto, ["tcp.stream"], decode_as)}
    clients = {}
    for stream, sport in tshark(
        path, "tcp.flags.syn==1 && tcp.flags.ack==0", ["tcp.stream", "tcp.srcport"], decode_as
    ):
        clients.setdefault(stream, sport)
    streams = {}
    for stream, sport, dport, hexdata in tshark(
        path, "tcp.len>0", ["tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.payload"], decode_as
    ):
        if stream not in wanted:
            continue
        client = clients.get(stream)
        if client is None:
            # No SYN captured: the ephemeral (larger) port is the client's.
            client = sport if int(sport) > int(dport) else dport
        d = TO_SERVER if sport == client else TO_CLIENT
        streams.setdefault(stream, []).append((d, bytes.fromhex(hexdata.decode())))
    return streams


def mqtt_packets(data):
    """Splits one direction's bytes into packets (the tail may be partial)."""
    out, i = [], 0
    while i < len(data):
        j, mult, length = i + 1, 1, 0
        while j < len(data) and j - i <= 4:
            length += (data[j] & 0x7F) * mult
            mult *= 128
            j += 1
            if data[j - 1] & 0x80 == 0:
                break
        end = min(j + length, len(data))
        out.append(data[i:end])
        i = end
    return out


def connect_has_password(pkt):
    if not pkt or pkt[0] >> 4 != 1:
        return False
    j = 1
    while j < len(pkt) and pkt[j] & 0x80:
        j += 1
    j += 1
    if j + 2 > len(pkt):
        return True  # unreadable: drop it to be safe
    name_len = int.from_bytes(pkt[j : j + 2], "big")
    flags = j + 2 + name_len + 1
    return flags >= len(pkt) or pkt[flags] & 0xC0 != 0


def without_mqtt_passwords(steps):
    """Reframes each direction into packets, dropping CONNECTs with a
    password (or user name: a CONNECT with a user name usually has one)."""
    per_dir = {TO_SERVER: b"", TO_CLIENT: b""}
    order = []
    for d, b in steps:
        per_dir[d] += b
        order.append(d)
    out = []
    queues = {d: mqtt_packets(per_dir[d]) for d in per_dir}
    # Interleave packets by direction turns, as in the capture.
    turns = []
    for d in order:
        if not turns or turns[-1] != d:
            turns.append(d)
    for d in turns:
        q = queues[d]
        if q:
            out.append((d, q.pop(0)))
    for d in (TO_SERVER, TO_CLIENT):
        out.extend((d, p) for p in queues[d])
    return [(d, p) for d, p in out if not connect_has_password(p)]


def write(out_dir, target, name, data, written):
    if data in written:
        return
    written.add(data)
    os.makedirs(os.path.join(out_dir, target), exist_ok=True)
    with open(os.path.join(out_dir, target, name), "wb") as f:
        f.write(data)


def from_captures(pcap_dir, out_dir, written):
    for proto in ("http", "mqtt", "telnet"):
        folder = os.path.join(pcap_dir, proto)
        for fname in sorted(os.listdir(folder)):
            rel = f"{proto}/{fname}"
            streams = tcp_streams(os.path.join(folder, fname), proto, DECODE_AS.get(rel))
            for stream, steps in streams.items():
                if proto == "mqtt":
                    steps = without_mqtt_passwords(steps)
                elif proto == "http":
                    steps = [(d, AUTH_LINE.sub(b"", b)) for d, b in steps]
                raw = b"".join(b for _, b in steps)
                if not raw or SECRET.search(raw):
                    continue
                if proto == "telnet" and LOGIN.search(raw):
                    continue
                if proto == "http" and not re.match(rb"[A-Z-]+ |HTTP/", raw.lstrip()):
                    continue  # another protocol in a mixed capture
                base = fname.rsplit(".", 1)[0]
                write(out_dir, proto, f"pcap-{base}-s{int(stream)}", encode(steps), written)
    # DHCP frames are in mixed captures: the ones whose protocol hierarchy
    # (phs/<path>.txt) lists dhcp. Server-to-client is what leaves port 67.
    for folder in sorted(os.listdir(os.path.join(pcap_dir, "phs"))):
        for fname in sorted(os.listdir(os.path.join(pcap_dir, "phs", folder))):
            with open(os.path.join(pcap_dir, "phs", folder, fname)) as f:
                if not any(line.split()[:1] == ["dhcp"] for line in f):
                    continue
            pcap = fname[: -len(".txt")]
            rows = tshark(
                os.path.join(pcap_dir, folder, pcap), "dhcp", ["udp.srcport", "udp.payload"]
            )
            steps = [
                (TO_CLIENT if sport == b"67" else TO_SERVER, bytes.fromhex(h.decode()))
                for sport, h in rows
            ]
            if steps:
                base = pcap.rsplit(".", 1)[0]
                write(out_dir, "dhcp", f"pcap-{base}", datagrams(steps), written)
    folder = os.path.join(pcap_dir, "coap")
    for fname in sorted(os.listdir(folder)):
        rows = tshark(
            os.path.join(folder, fname),
            "coap && !icmpv6",
            ["udp.srcport", "udp.dstport", "udp.payload"],
        )
        steps = [
            (TO_SERVER if dport == b"5683" else TO_CLIENT, bytes.fromhex(h.decode()))
            for _, dport, h in rows
        ]
        if steps:
            base = fname.rsplit(".", 1)[0]
            write(out_dir, "coap", f"pcap-{base}", datagrams(steps), written)


def mqtt_str(s):
    return len(s).to_bytes(2, "big") + s


def mqtt_packet(first, body):
    n, vbi = len(body), b""
    while True:
        b = n % 128
        n //= 128
        vbi += bytes([b | (0x80 if n else 0)])
        if not n:
            return bytes([first]) + vbi + body


def handmade(out_dir, written):
    c, s = TO_SERVER, TO_CLIENT
    # HTTP: RFC 9110 §15 / RFC 9112 §2.1 example exchange, chunked (§7.1),
    # pipelining, Expect: 100-continue, CONNECT and Upgrade, HTTP/0.9.
    hello_req = b"GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\nAccept-Language: en, mi\r\n\r\n"
    hello_resp = b"HTTP/1.1 200 OK\r\nDate: Mon, 27 Jul 2009 12:28:53 GMT\r\nServer: Apache\r\nContent-Length: 51\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\n\r\nHello World! My content includes a trailing CRLF.\r\n"
    chunked_post = b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"
    ok = b"HTTP/1.1 204 No Content\r\n\r\n"
    http = {
        "hello": [(c, hello_req), (s, hello_resp)],
        "chunked": [(c, chunked_post), (s, ok)],
        "pipelined-head": [
            (c, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"),
            (s, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        ],
        "expect-continue": [
            (c, b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"),
            (s, b"HTTP/1.1 100 Continue\r\n\r\n"),
            (c, b"abc"),
            (s, b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ],
        "connect": [
            (c, b"CONNECT server.example.com:80 HTTP/1.1\r\nHost: server.example.com:80\r\n\r\n"),
            (s, b"HTTP/1.1 200 OK\r\n\r\n"),
            (c, b"\x16\x03\x01tunnel"),
        ],
        "upgrade": [
            (c, b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            (s, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"),
        ],
        "close-delimited": [
            (c, b"GET / HTTP/1.0\r\n\r\n"),
            (s, b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>"),
        ],
        "http09": [(c, b"GET /index.html\r\n"), (s, b"<html>")],
        "te-cl": [
            (c, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
        ],
        "ssdp": [(c, b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n')],
    }
    for name, steps in http.items():
        write(out_dir, "http", f"hand-{name}", encode(steps), written)
        write(out_dir, "http", f"hand-{name}-tiny", encode(steps, 1), written)
    # With a gap inside the response body (entry with bit 6 set).
    data = encode(http["hello"])
    gap = bytes([0x80 | 0x40, 10])
    write(out_dir, "http", "hand-hello-gap", bytes([0, data[1] + 1]) + data[2:6] + gap + data[6:], written)

    # MQTT 3.1.1 §3 and 5.0 §3 packets (no passwords).
    connect311 = mqtt_packet(0x10, mqtt_str(b"MQTT") + b"\x04\x02\x00\x3c" + mqtt_str(b"sensor-1"))
    connect5 = mqtt_packet(
        0x10,
        mqtt_str(b"MQTT") + b"\x05\x06\x00\x3c" + b"\x05\x11\x00\x00\x0e\x10"  # session expiry
        + mqtt_str(b"dev5") + b"\x00" + mqtt_str(b"will/t") + mqtt_str(b"bye"),
    )
    connect31 = mqtt_packet(0x10, mqtt_str(b"MQIsdp") + b"\x03\x02\x00\x0a" + mqtt_str(b"old"))
    connack = b"\x20\x02\x00\x00"
    connack5 = mqtt_packet(0x20, b"\x00\x00\x06\x22\x00\x0a\x21\x00\x14")  # alias max, receive max
    pub0 = mqtt_packet(0x30, mqtt_str(b"home/temp") + b"21.5")
    pub1 = mqtt_packet(0x32, mqtt_str(b"home/door") + b"\x00\x07" + b"open")
    pub2 = mqtt_packet(0x34, mqtt_str(b"home/lock") + b"\x00\x08" + b"on")
    pub5 = mqtt_packet(0x32, mqtt_str(b"a/b") + b"\x00\x09" + b"\x08\x23\x00\x01\x03\x00\x03txt" + b"x")
    pub5_alias = mqtt_packet(0x30, mqtt_str(b"") + b"\x03\x23\x00\x01" + b"y")
    sub = mqtt_packet(0x82, b"\x00\x0a" + mqtt_str(b"home/+/temp") + b"\x01" + mqtt_str(b"#") + b"\x00")
    sub5 = mqtt_packet(0x82, b"\x00\x0b\x00" + mqtt_str(b"$share/g/x") + b"\x2e")
    mqtt = {
        "v311-session": [
            (c, connect311), (s, connack), (c, pub0), (c, pub1), (s, b"\x40\x02\x00\x07"),
            (c, pub2), (s, b"\x50\x02\x00\x08"), (c, b"\x62\x02\x00\x08"), (s, b"\x70\x02\x00\x08"),
            (c, sub), (s, b"\x90\x04\x00\x0a\x01\x80"),
            (c, mqtt_packet(0xA2, b"\x00\x0c" + mqtt_str(b"#"))), (s, b"\xb0\x02\x00\x0c"),
            (c, b"\xc0\x00"), (s, b"\xd0\x00"), (c, b"\xe0\x00"),
        ],
        "v5-session": [
            (c, connect5), (s, connack5), (c, pub5), (s, b"\x40\x03\x00\x09\x10"), (c, pub5_alias),
            (c, sub5), (s, b"\x90\x04\x00\x0b\x00\x01"),
            (c, mqtt_packet(0xF0, b"\x18\x05\x15\x00\x02ab")), (c, b"\xe0\x02\x04\x00"),
        ],
        "v31-session": [(c, connect31), (s, connack), (c, pub1), (s, b"\x40\x02\x00\x07")],
        "midstream": [(s, b"\x20\x03\x00\x00\x00"), (c, pub0), (c, b"\xc0\x00"), (s, b"\xd0\x00")],
        "big-publish": [(c, connect311), (c, mqtt_packet(0x30, mqtt_str(b"cam/jpg") + b"\xff\xd8" + b"\x00" * 3000))],
        "reserved-type": [(c, connect311), (c, b"\x00\x00"), (c, b"\xf0\x00")],
    }
    for name, steps in mqtt.items():
        write(out_dir, "mqtt", f"hand-{name}", encode(steps), written)
        write(out_dir, "mqtt", f"hand-{name}-tiny", encode(steps, 1), written)

    # CoAP: RFC 7252 Appendix A figures, RFC 7641 observe, RFC 7959 block.
    coap = {
        "rfc7252-a1": [(c, b"\x40\x01\x7d\x34\xbbtemperature"), (s, b"\x60\x45\x7d\x34\xff22.3 C")],
        "rfc7252-a2-token": [
            (c, b"\x44\x01\x7d\x35\x20\x3e\xb7\x56\xbbtemperature"),
            (s, b"\x64\x45\x7d\x35\x20\x3e\xb7\x56\xff22.3 C"),
        ],
        "separate": [
            (c, b"\x42\x01\x7d\x36\x12\x34\xbbtemperature"),
            (s, b"\x60\x00\x7d\x36"),
            (s, b"\x42\x45\x23\x45\x12\x34\xff22.3 C"),
            (c, b"\x60\x00\x23\x45"),
        ],
        "observe": [
            (c, b"\x41\x01\x00\x01\xaa\x60\x4btemperature"),
            (s, b"\x61\x45\x00\x01\xaa\x61\x05\xff20"),
            (s, b"\x51\x45\x00\x02\xaa\x61\x06\xff21"),
            (c, b"\x41\x01\x00\x03\xaa\x61\x01\x4btemperature"),
        ],
        "block2": [
            (c, b"\x41\x01\x00\x10\xbb\xb4large\xc1\x02"),
            (s, b"\x61\x45\x00\x10\xbb\xd1\x0a\x0a\xff" + b"x" * 64),
            (c, b"\x41\x01\x00\x11\xbb\xb4large\xc1\x12"),
            (s, b"\x61\x45\x00\x11\xbb\xd1\x0a\x12\xff" + b"y" * 10),
        ],
        "discovery": [
            (c, b"\x41\x01\x00\x20\xcc\xbb.well-known\x04core"),
            (s, b"\x61\x45\x00\x20\xcc\xc1\x28\xff</sensors/temp>;rt=\"temperature-c\";if=\"sensor\";obs,</sensors/light>;ct=0 40;title=\"Light\""),
        ],
        "ping-reset": [(c, b"\x40\x00\x12\x34"), (s, b"\x70\x00\x12\x34")],
        "non-unanswered": [(c, b"\x51\x02\x00\x30\x01\xb3led\xff1"), (c, b"\x51\x02\x00\x30\x01\xb3led\xff1")],
    }
    for name, steps in coap.items():
        write(out_dir, "coap", f"hand-{name}", datagrams(steps), written)
        write(out_dir, "coap", f"hand-{name}-tiny", datagrams(steps, 1 | (1 << 2)), written)

    # Telnet: RFC 854/855 negotiation, RFC 1073 NAWS, RFC 1091 TERMINAL-TYPE,
    # RFC 1572 NEW-ENVIRON, RFC 1184 LINEMODE, RFC 2941 AUTHENTICATION; a
    # login dialogue with an empty password line and a shell command.
    iac = b"\xff"
    telnet = {
        "negotiation": [
            (s, iac + b"\xfd\x01" + iac + b"\xfd\x1f" + iac + b"\xfb\x01" + iac + b"\xfb\x03" + iac + b"\xfd\x18"),
            (c, iac + b"\xfb\x1f" + iac + b"\xfa\x1f\x00\x50\x00\x18" + iac + b"\xf0" + iac + b"\xfb\x18"),
            (s, iac + b"\xfa\x18\x01" + iac + b"\xf0"),
            (c, iac + b"\xfa\x18\x00xterm-256color" + iac + b"\xf0"),
        ],
        "environ": [
            (s, iac + b"\xfd\x27" + iac + b"\xfa\x27\x01\x00USER" + iac + b"\xf0"),
            (c, iac + b"\xfb\x27" + iac + b"\xfa\x27\x00\x00USER\x01guest\x03LANG\x01C" + iac + b"\xf0"),
        ],
        "linemode-auth": [
            (c, iac + b"\xfb\x22" + iac + b"\xfa\x22\x01\x03" + iac + b"\xf0" + iac + b"\xfa\x22\x03\x01\x03\x7f\x02\x02\x15" + iac + b"\xf0"),
            (s, iac + b"\xfd\x25" + iac + b"\xfa\x25\x01\x02\x02\x05\x00" + iac + b"\xf0"),
            (c, iac + b"\xfa\x25\x03guest" + iac + b"\xf0"),
        ],
        "login-shell": [
            (s, iac + b"\xfd\x01\r\nBusyBox v1.31.1\r\nrouter login: "),
            (c, b"g"), (c, b"u"), (c, b"e"), (c, b"s"), (c, b"t"), (c, b"\r\x00"),
            (s, b"guest\r\nPassword: "),
            (c, b"\r\n"),
            (s, b"\r\n\r\nBusyBox built-in shell (ash)\r\n~ # "),
            (c, b"uname -a\r\n"),
            (s, b"Linux router 4.14\r\n~ # "),
            (c, b"cat /proc/cpuinfo\x08\x08\x08\x08\x08\x08\x08\x08\r\n"),
        ],
        "commands-escapes": [
            (c, b"data" + iac + iac + b"more" + iac + b"\xf1" + iac + b"\xf4" + iac + b"\xf6" + iac + b"\xf8"),
            (s, b"\x1b[1;32mcolour\x1b[0m\r\n" + iac + b"\xf9" + iac + b"\xf0" + iac + b"\x10"),
        ],
    }
    for name, steps in telnet.items():
        write(out_dir, "telnet", f"hand-{name}", encode(steps), written)
        write(out_dir, "telnet", f"hand-{name}-tiny", encode(steps, 1), written)
    # Keystrokes one per segment, as interactive clients send them.
    ks = [(s, b"login: ")] + [(c, bytes([ch])) for ch in b"root\r\n"]
    data = b"".join(b for _, b in ks)
    table = b"".join(bytes([(d << 7), len(b)]) for d, b in ks)
    write(out_dir, "telnet", "hand-keystrokes", bytes([0, len(ks)]) + table + data, written)


def dhcp_message(op, xid, options, yiaddr=b"\0" * 4, giaddr=b"\0" * 4, sname=b"", file=b""):
    """RFC 2131 §2 Figure 1: the BOOTP header (Ethernet client
    00:0b:82:01:fc:42, BROADCAST set), the magic cookie (§3) and options."""
    header = bytes([op, 1, 6, 0]) + xid.to_bytes(4, "big") + b"\0\0\x80\0"
    header += b"\0" * 4 + yiaddr + b"\0" * 4 + giaddr
    header += bytes.fromhex("000b8201fc42") + b"\0" * 10
    header += sname.ljust(64, b"\0") + file.ljust(128, b"\0")
    return header + bytes([99, 130, 83, 99]) + options


def handmade_dhcp(out_dir, written):
    c, s = TO_SERVER, TO_CLIENT
    # RFC 2131 §3.1 exchange; options of RFC 2132 (53 type, 12 host name,
    # 60 vendor class, 61 client id, 55 parameter list, 50 requested
    # address, 54 server id, 51 lease time).
    x = 0x3903F326
    ident = b"\x0c\x06cam-01\x3c\x08MSFT 5.0\x3d\x07\x01\x00\x0b\x82\x01\xfc\x42\x37\x04\x01\x03\x06\x0f"
    lease = b"\x33\x04\x00\x00\x0e\x10\x36\x04\xc0\xa8\x01\x01"
    offered = bytes([192, 168, 1, 124])
    exchange = [
        (c, dhcp_message(1, x, b"\x35\x01\x01" + ident + b"\xff")),
        (s, dhcp_message(2, x, b"\x35\x01\x02" + lease + b"\xff", yiaddr=offered)),
        (c, dhcp_message(1, x, b"\x35\x01\x03\x32\x04" + offered + b"\x36\x04\xc0\xa8\x01\x01" + ident + b"\xff")),
        (s, dhcp_message(2, x, b"\x35\x01\x05" + lease + b"\xff", yiaddr=offered)),
        (c, dhcp_message(1, x + 1, b"\x35\x01\x07\x36\x04\xc0\xa8\x01\x01\xff")),
    ]
    dhcp = {
        "rfc2131-exchange": exchange,
        # Option 52 = 3: `file`, then `sname` hold options (RFC 2131 §4.1),
        # a host name split over them (RFC 3396).
        "overload": [(s, dhcp_message(2, x, b"\x35\x01\x05\x34\x01\x03\xff",
                                      sname=b"\x0c\x02-1\xff", file=b"\x0c\x03cam\xff"))],
        "relayed-inform": [(c, dhcp_message(1, x, b"\x35\x01\x08\xff", giaddr=bytes([10, 0, 0, 1])))],
        "truncated-option": [(c, dhcp_message(1, x, b"\x35\x01\x01\x0c\x20abc"))],
        "no-end-repeats": [(c, dhcp_message(1, x, b"\x35\x01\x01\x35\x02\x01\x03\x00\x00"))],
        "bootp": [(c, dhcp_message(1, x, b"")[:236] + b"\0" * 64)],
    }
    for name, steps in dhcp.items():
        write(out_dir, "dhcp", f"hand-{name}", datagrams(steps), written)
        write(out_dir, "dhcp", f"hand-{name}-tiny", datagrams(steps, 1), written)


def main():
    pcap_dir, out_dir = sys.argv[1], sys.argv[2]
    written = set()
    handmade(out_dir, written)
    handmade_dhcp(out_dir, written)
    from_captures(pcap_dir, out_dir, written)


if __name__ == "__main__":
    main()
