#!/usr/bin/env python3
"""Per-device feature windows computed from tshark's dissection alone.

An independent implementation of a subset of spanwatch's feature table
(sensor/src/features/FEATURES.md), for the tests that compare it with
`spanwatch replay --windows`: nothing here comes from spanwatch's code, only
from the table's definitions and the flow rules written under it. Python 3
standard library and tshark.

    python3 datasets/features_tshark.py CAPTURE [--config spanwatch.toml] [--out FILE]

writes one JSON object per line for every (device, window) in which a
feature is not zero: `device` (MAC), `start` (Unix seconds, a multiple of the
window length), then the features of FEATURES below. `--config` reads the
window length (`[devices] window_secs`) and the flow timeouts (`[flows]`) of
a spanwatch config file (`spanwatch config default` prints every key); keys
it lacks keep spanwatch's documented defaults.

Where tshark's view is narrower than the definitions, the comparison holds
only for traffic that stays inside it: tshark dissects MQTT, HTTP, CoAP and
Telnet on their registered ports (spanwatch recognises them by content); a
failed Telnet login is found by the server's failure message (not by a bare
new login prompt); and a PUBLISH or HTTP message spread over TCP segments is
placed at its first segment (the definition: where its head completes; the
same segment unless the head itself is split).
"""

import argparse
import json
import subprocess
import sys
import tomllib
from collections import defaultdict

# The features computed here, in the table's order.
FEATURES = [
    "packets_out", "packets_in", "bytes_out", "bytes_in", "flows_out", "flows_in",
    "tcp_refused_out", "tcp_refused_in", "peers", "dst_ports", "mqtt_connect", "mqtt_publish_out",
    "mqtt_publish_in", "mqtt_subscribe", "coap_get", "coap_put", "coap_post", "coap_delete",
    "http_requests", "http_4xx", "http_401", "telnet_login_failed",
]

# spanwatch's documented defaults (`spanwatch config default`).
DEFAULTS = {
    "window_secs": 10,
    "tcp_new_timeout_secs": 30,
    "tcp_established_timeout_secs": 300,
    "tcp_closed_timeout_secs": 10,
    "udp_timeout_secs": 60,
}

# What a Telnet server answers to a failed login (login(1), busybox login,
# PAM, network equipment), compared without case.
LOGIN_FAILURE_TEXTS = ("login incorrect", "login failed", "access denied", "authentication failed")

# MQTT control packet types (OASIS MQTT 3.1.1 §2.2.1, 5.0 §2.1.2).
MQTT_CONNECT, MQTT_PUBLISH, MQTT_SUBSCRIBE = 1, 3, 8
# CoAP request codes 0.01-0.04 (RFC 7252 §12.1.1).
COAP_METHODS = {1: "coap_get", 2: "coap_post", 3: "coap_put", 4: "coap_delete"}

TCP, UDP = 6, 17
SYN, RST, FIN, ACK = 0x02, 0x04, 0x01, 0x10
NS = 1_000_000_000

FIELDS = [
    "frame.time_epoch", "frame.len", "frame.protocols", "eth.src", "eth.dst", "vlan.id", "ip.src", "ip.dst",
    "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw",
    "tcp.len", "tcp.segment", "tcp.analysis.retransmission", "udp.srcport", "udp.dstport", "mqtt.msgtype", "coap.code", "http.request.method",
    "http.response.code", "telnet.data",
]
SEP, AGG = "\x1e", "\x1f"


class FieldError(Exception):
    """A line of tshark's output that does not read as expected."""


def frames(pcap):
    """Every frame of `pcap` as a dict of field name to list of occurrences
    (outer headers first)."""
    cmd = ["tshark", "-n", "-r", pcap, "-T", "fields", "-E", "separator=" + SEP, "-E", "occurrence=a",
           "-E", "aggregator=" + AGG]
    for f in FIELDS:
        cmd += ["-e", f]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        number = 0
        for raw in proc.stdout:
            number += 1
            parts = raw.decode("utf-8", "replace").rstrip("\n").split(SEP)
            if len(parts) != len(FIELDS):
                proc.kill()
                raise FieldError("frame %d: %d fields from tshark, expected %d" % (number, len(parts), len(FIELDS)))
            yield number, {k: (v.split(AGG) if v else []) for k, v in zip(FIELDS, parts)}
        err = proc.stderr.read().decode("utf-8", "replace")
        if proc.wait() != 0:
            if "cut short in the middle of a packet" not in err and "appears to be damaged or corrupt" not in err:
                raise FieldError("tshark failed on %s: %s" % (pcap, err.strip()[-500:]))
            # Like spanwatch, a capture damaged part-way keeps its frames before the damage.
            print("features_tshark: warning: %s is damaged after %d frames" % (pcap, number), file=sys.stderr)


def transport_of(protocols):
    """The transport of a frame's first IP header from tshark's layer list
    (`eth:ethertype:ip:icmp:ip:udp` is ICMP quoting UDP; a fragment held for
    reassembly shows `ip:data`): "tcp", "udp" or None."""
    layers = protocols.split(":")
    first_ip = next((i for i, p in enumerate(layers) if p in ("ip", "ipv6")), None)
    if first_ip is None:
        return None
    for p in layers[first_ip + 1:]:
        if p in ("tcp", "udp"):
            return p
        if p in ("icmp", "icmpv6", "data", "ip", "ipv6"):
            return None
    return None


def epoch_nanos(text):
    """'1795444139.232950000' as integer nanoseconds (no float rounding)."""
    secs, _, frac = text.partition(".")
    return int(secs) * NS + int((frac + "000000000")[:9])


def is_device(mac):
    """A device is a unicast, non-zero MAC (the I/G bit of the first octet clear)."""
    return bool(mac) and int(mac[:2], 16) & 1 == 0 and mac != "00:00:00:00:00:00"


def ints(values):
    return [int(v) for v in values if v]


class Flow:
    """One flow as FEATURES.md's flow rules define it."""

    def __init__(self, client, server, client_mac, server_mac, proto):
        self.client, self.server = client, server
        self.client_mac, self.server_mac = client_mac, server_mac
        self.proto = proto
        self.last_ns = 0
        self.state = "new"
        self.fin = {True: False, False: False}  # by "sent by the client"
        self.syn_ack_seen = False
        self.client_isn = None
        self.established = False
        self.refused = False
        # The end of the server's Telnet text so far, for a failure message split over segments.
        self.server_text_tail = ""

    def timeout_secs(self, cfg):
        if self.proto == UDP:
            return cfg["udp_timeout_secs"]
        return {"new": cfg["tcp_new_timeout_secs"], "closed": cfg["tcp_closed_timeout_secs"]}.get(
            self.state, cfg["tcp_established_timeout_secs"])

    def tcp(self, from_client, flags, seq, payload_len):
        """Follows the connection's state with one segment; True when the
        segment is a refusal (a RST from the server before the handshake
        completed)."""
        refusal = not from_client and flags & RST and not (flags & SYN and flags & ACK) and not self.established
        if flags & SYN:
            if flags & ACK:
                self.syn_ack_seen = True
            elif from_client and self.client_isn is None:
                self.client_isn = seq
        if flags & FIN:
            self.fin[from_client] = True
        if flags & RST or (self.fin[True] and self.fin[False]):
            self.state = "closed"
        elif self.fin[True] or self.fin[False]:
            self.state = "half-closed"
        elif self.state == "new" and ((self.syn_ack_seen and flags & ACK and not flags & SYN) or payload_len > 0):
            self.state = "established"
        self.established |= self.state == "established"
        return bool(refusal)


def opened_by_source(proto, flags, sport, dport):
    """Whether the sender of a flow's first packet opened it: the sender of a
    SYN did, the sender of a SYN-ACK did not; otherwise the endpoint on the
    service port (below 1024, else the lower one) is the server."""
    if proto == TCP and flags & SYN:
        return not flags & ACK
    if (sport < 1024) != (dport < 1024):
        return dport < 1024
    return sport >= dport


def login_failures(flow, from_client, chunks):
    """Failure answers that complete in this frame's Telnet data of the
    server (a text split over segments counts once, where it ends)."""
    if from_client:
        return 0
    tail = flow.server_text_tail
    text = (tail + "".join(chunks)).lower()
    n = 0
    for needle in LOGIN_FAILURE_TEXTS:
        at = text.find(needle)
        while at >= 0:
            if at + len(needle) > len(tail):
                n += 1
            at = text.find(needle, at + 1)
    longest = max(len(t) for t in LOGIN_FAILURE_TEXTS)
    flow.server_text_tail = text[-(longest - 1):]
    return n


def compute(pcap, cfg):
    window_ns = cfg["window_secs"] * NS
    rows = defaultdict(lambda: defaultdict(int))  # (mac, window start ns) -> feature -> value
    peers = defaultdict(set)
    ports = defaultdict(set)
    flows = {}
    window_of_frame = {}

    for number, f in frames(pcap):
        ts = epoch_nanos(f["frame.time_epoch"][0])
        w = ts // window_ns * window_ns
        window_of_frame[number] = w
        src, dst = (f["eth.src"] or [""])[0], (f["eth.dst"] or [""])[0]
        out = rows[(src, w)] if is_device(src) else None
        inn = rows[(dst, w)] if is_device(dst) else None
        length = int(f["frame.len"][0])
        if out is not None:
            out["packets_out"] += 1
            out["bytes_out"] += length
        if inn is not None:
            inn["packets_in"] += 1
            inn["bytes_in"] += length

        if f["ip.src"]:
            ip_src, ip_dst = f["ip.src"][0], f["ip.dst"][0]
        elif f["ipv6.src"]:
            ip_src, ip_dst = f["ipv6.src"][0], f["ipv6.dst"][0]
        else:
            continue
        if out is not None:
            peers[(src, w)].add(ip_dst)
        if inn is not None:
            peers[(dst, w)].add(ip_src)
        layer = transport_of(f["frame.protocols"][0])
        if layer is None:
            continue  # ICMP (with the headers it quotes), other transports, held fragments: no flow
        proto = TCP if layer == "tcp" else UDP
        sport, dport = int(f[layer + ".srcport"][0]), int(f[layer + ".dstport"][0])
        flags = int(f["tcp.flags"][0], 16) if proto == TCP else 0
        seq = int(f["tcp.seq_raw"][0]) if proto == TCP else 0
        a, b = (ip_src, sport), (ip_dst, dport)
        key = (min(a, b), max(a, b), proto, tuple(f["vlan.id"]))
        flow = flows.get(key)
        if flow is not None and flow.last_ns + flow.timeout_secs(cfg) * NS < ts:
            flow = None  # idle for longer than its timeout: ended
        if (flow is not None and proto == TCP and flow.state == "closed" and flags & SYN and not flags & ACK
                and seq != flow.client_isn):
            flow = None  # a new connection on the 5-tuple of a finished one
        if flow is None:
            if opened_by_source(proto, flags, sport, dport):
                flow = Flow(a, b, src, dst, proto)
            else:
                flow = Flow(b, a, dst, src, proto)
            flows[key] = flow
            if is_device(flow.client_mac):
                rows[(flow.client_mac, w)]["flows_out"] += 1
                ports[(flow.client_mac, w)].add(flow.server[1])
            if is_device(flow.server_mac):
                rows[(flow.server_mac, w)]["flows_in"] += 1
        flow.last_ns = max(flow.last_ns, ts)
        from_client = a == flow.client
        if proto == TCP and flow.tcp(from_client, flags, seq, int(f["tcp.len"][0])) and not flow.refused:
            flow.refused = True
            if is_device(flow.client_mac):
                rows[(flow.client_mac, w)]["tcp_refused_out"] += 1
            if is_device(flow.server_mac):
                rows[(flow.server_mac, w)]["tcp_refused_in"] += 1

        if f["tcp.analysis.retransmission"]:
            continue  # data seen before: spanwatch's reassembly keeps the first copy, no new message
        # Messages: sent by the flow's endpoint on this side, with its MAC in the flow's first packet.
        sender, receiver = (flow.client_mac, flow.server_mac) if from_client else (flow.server_mac, flow.client_mac)
        # The first message of a frame that completes a message begun in earlier segments
        # (tshark lists them) began in the first of them.
        began = window_of_frame.get(min(ints(f["tcp.segment"])), w) if f["tcp.segment"] else w

        def count(mac, feature, first, by=1):
            """Counts for `mac` in the window of the message's head (`first`:
            the frame's first message) or of this frame (any other)."""
            if is_device(mac) and by:
                rows[(mac, began if first else w)][feature] += by

        for i, t in enumerate(ints(f["mqtt.msgtype"])):
            if t == MQTT_CONNECT:
                count(sender, "mqtt_connect", False)
            elif t == MQTT_PUBLISH:
                count(sender, "mqtt_publish_out", i == 0)
                count(receiver, "mqtt_publish_in", i == 0)
            elif t == MQTT_SUBSCRIBE:
                count(sender, "mqtt_subscribe", False)
        for code in ints(f["coap.code"]):
            if code in COAP_METHODS:
                count(sender, COAP_METHODS[code], False)
        for i in range(len(f["http.request.method"])):
            count(sender, "http_requests", i == 0)
        for i, status in enumerate(ints(f["http.response.code"])):
            if 400 <= status < 500:
                count(receiver, "http_4xx", i == 0)
                count(receiver, "http_401", i == 0, status == 401)
        if f["telnet.data"]:
            count(flow.client_mac, "telnet_login_failed", False, login_failures(flow, from_client, f["telnet.data"]))

    for key, s in peers.items():
        rows[key]["peers"] = len(s)
    for key, s in ports.items():
        rows[key]["dst_ports"] = len(s)
    for (mac, w), values in sorted(rows.items()):
        if any(values.values()):
            yield {"device": mac, "start": w // NS, **{k: values.get(k, 0) for k in FEATURES}}


def load_config(path):
    cfg = dict(DEFAULTS)
    if path:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        cfg["window_secs"] = doc.get("devices", {}).get("window_secs", cfg["window_secs"])
        for k in DEFAULTS:
            if k in doc.get("flows", {}):
                cfg[k] = doc["flows"][k]
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--config", help="a spanwatch config file: window length and flow timeouts")
    ap.add_argument("--out", help="output file (default: stdout)")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print("features_tshark: %s: %s" % (args.config, e), file=sys.stderr)
        return 2
    out = open(args.out, "w") if args.out else sys.stdout
    try:
        for row in compute(args.capture, cfg):
            out.write(json.dumps(row) + "\n")
    except FieldError as e:
        print("features_tshark: %s" % e, file=sys.stderr)
        return 1
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
