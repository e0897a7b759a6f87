"""Tests of the IoT lab generator; tshark is the independent judge.

Run from the repository root, as root:
    python3 -m unittest discover -s datasets/lab -v
"""

import bisect
import csv
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import iotlab  # noqa: E402  (the plan is a pure function: tested in-process)

REPO = os.path.dirname(os.path.dirname(HERE))
LAB = os.path.join(HERE, "iotlab.py")
SAMPLES = os.path.join(REPO, "datasets", "samples")
OUI_CSV = "/usr/share/ieee-data/oui.csv"   # Debian's ieee-data (.ci/packages)
PREFIX = "swlab-"
RUN_SEED = 7
RUN_DURATION = 200
IRREGULAR_SEED = 22       # a benign run whose plan has every kind of irregular event
IRREGULAR_DURATION = 80
TOL = 0.25  # seconds of clock tolerance around a label window
SYN_STORM_SECONDS, SYN_STORM_COUNT = 5.0, 50   # benign captures never open this many connections this fast
RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
# Vendors the brief names per device kind, as IEEE registers them (matched in oui.csv).
KIND_ORGS = {
    "temp": ("Espressif", "Tuya"), "hum": ("Espressif", "Tuya"), "soil": ("Espressif", "Tuya"),
    "plug": ("Espressif", "Tuya", "TP-LINK"), "thermo": ("Nest Labs", "Resideo", "Espressif"),
    "cam": ("Hikvision", "Dahua"), "rtr": ("TP-LINK", "Ubiquiti", "Routerboard"), "hub": ("Raspberry Pi",),
    "ops": ("Dell", "Intel", "Hewlett Packard", "HP Inc"), "atk": ("Dell", "Intel", "Hewlett Packard", "HP Inc"),
    "cloud": ("Synology", "Dell"),
}
# Distinctive default/weak passwords (public lists): never in a plan or an output file.
SECRET_WORDS = ["xc3511", "vizxv", "xmhdipc", "juantech", "888888", "54321", "plug1234", "password1",
                "iot2020", "smartplug", "letmein1", "qwerty12", "admin123", "camera1", "12345678", "pass1234"]

IS_ROOT = os.geteuid() == 0

FIELDS = ["frame.time_epoch", "frame.len", "ip.src", "ip.dst", "ip.proto", "icmp.type", "tcp.srcport",
          "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset", "udp.srcport",
          "udp.dstport", "mqtt.msgtype", "mqtt.conack.val", "mqtt.clientid", "mqtt.topic", "coap.code",
          "coap.opt.uri_path", "http.request.method", "http.request.uri", "http.response.code", "eth.src",
          "arp.src.proto_ipv4", "arp.dst.proto_ipv4", "tcp.stream", "http.user_agent", "mqtt.username",
          "telnet.data"]
Frame = namedtuple("Frame", [f.replace(".", "_") for f in FIELDS])


def _int(s):
    try:
        return int(s, 0)
    except ValueError:
        return None


def load_frames(pcap):
    """Every frame of the capture as dissected by tshark."""
    cmd = ["tshark", "-n", "-r", pcap, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", "aggregator=|"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
    frames = []
    for line in out.decode("utf-8", "replace").split("\n"):
        if not line:
            continue
        parts = line.split("\t", len(FIELDS) - 1)
        parts += [""] * (len(FIELDS) - len(parts))
        v = dict(zip(FIELDS, parts))
        icmp = v["icmp.type"] != ""
        first = lambda k: v[k].split("|")[0] if v[k] else ""  # noqa: E731 (outer header only)
        frames.append(Frame(
            float(v["frame.time_epoch"]), int(v["frame.len"] or 0), first("ip.src"), first("ip.dst"),
            first("ip.proto"), v["icmp.type"],
            None if icmp else _int(first("tcp.srcport") or "x"), None if icmp else _int(first("tcp.dstport") or "x"),
            first("tcp.flags.syn") in ("1", "True"), first("tcp.flags.ack") in ("1", "True"),
            first("tcp.flags.fin") in ("1", "True"), first("tcp.flags.reset") in ("1", "True"),
            None if icmp else _int(first("udp.srcport") or "x"), None if icmp else _int(first("udp.dstport") or "x"),
            [] if icmp else [_int(x) for x in v["mqtt.msgtype"].split("|") if x],
            [] if icmp else [_int(x) for x in v["mqtt.conack.val"].split("|") if x],
            [] if icmp else [x for x in v["mqtt.clientid"].split("|") if x],
            [] if icmp else [x for x in v["mqtt.topic"].split("|") if x],
            [] if icmp else [_int(x) for x in v["coap.code"].split("|") if x],
            "" if icmp else v["coap.opt.uri_path"],
            [] if icmp else [x for x in v["http.request.method"].split("|") if x],
            "" if icmp else v["http.request.uri"],
            [] if icmp else [_int(x) for x in v["http.response.code"].split("|") if x],
            v["eth.src"], v["arp.src.proto_ipv4"], v["arp.dst.proto_ipv4"],
            None if icmp else _int(first("tcp.stream") or "x"),
            "" if icmp else v["http.user_agent"],
            [] if icmp else [x for x in v["mqtt.username"].split("|") if x],
            "" if icmp else v["telnet.data"]))
    return frames


Label = namedtuple("Label", "start end phase attacker targets tool notes")
Event = namedtuple("Event", "start end event src dst tool notes")


def read_labels(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [Label(float(r["start_epoch"]), float(r["end_epoch"]), r["phase"], r["attacker_ip"],
                  [t for t in r["target_ips"].split(";") if t], r["tool"], r["notes"]) for r in rows]


def read_events(path):
    with open(path, newline="") as f:
        return [Event(float(r["start_epoch"]), float(r["end_epoch"]), r["event"], r["src_ip"], r["dst_ip"], r["tool"],
                      r["notes"]) for r in csv.DictReader(f)]


def read_hosts(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def kind_of(name):
    return re.sub(r"\d+$", "", name)


def window(frames, start, end):
    return [f for f in frames if start - TOL <= f.frame_time_epoch <= end + TOL]


def syn_only(f):
    return f.tcp_flags_syn and not f.tcp_flags_ack


def mqtt_count(frames, msgtype, src=None, dst=None):
    return sum(f.mqtt_msgtype.count(msgtype) for f in frames
               if (src is None or f.ip_src == src) and (dst is None or f.ip_dst == dst))


class Judge:
    """Checks, from tshark's dissection only, that a capture holds what its
    labels say."""

    def __init__(self, case, outdir):
        self.t = case
        self.frames = load_frames(os.path.join(outdir, "capture.pcap"))
        self.labels = read_labels(os.path.join(outdir, "labels.csv"))
        self.hosts = read_hosts(os.path.join(outdir, "hosts.csv"))
        self.by_name = {h["name"]: h for h in self.hosts}
        self.broker = self.by_name["cloud"]["ip"]

    # ---- per phase ---------------------------------------------------------
    def check_phase(self, lb):
        w = window(self.frames, lb.start, lb.end)
        self.t.assertTrue(w, "%s: no frames in its window" % lb.phase)
        getattr(self, "p_" + lb.phase)(lb, w)

    def p_recon_nmap_syn_scan(self, lb, w):
        syns = [f for f in w if f.ip_src == lb.attacker and syn_only(f)]
        self.t.assertGreaterEqual(len(syns), 500, "nmap SYN probes")
        self.t.assertGreaterEqual(len({f.tcp_dstport for f in syns}), 150, "distinct ports probed")
        self.t.assertGreaterEqual(len({f.ip_dst for f in syns}), 5, "hosts probed")
        udp = [f for f in w if f.ip_src == lb.attacker and f.udp_dstport == 5683]
        self.t.assertGreaterEqual(len(udp), 3, "UDP/5683 probes")

    def p_telnet_bruteforce_hydra(self, lb, w):
        tgt = lb.targets[0]
        conns = [f for f in w if f.ip_src == lb.attacker and f.ip_dst == tgt and f.tcp_dstport == 23 and syn_only(f)]
        self.t.assertGreaterEqual(len(conns), 2, "hydra telnet connections")
        fails = sum(f.telnet_data.count("Login incorrect") for f in w if f.ip_src == tgt and f.ip_dst == lb.attacker)
        self.t.assertGreaterEqual(fails, 3, "Login incorrect answers to hydra")
        sent = [f for f in w if f.ip_src == lb.attacker and f.tcp_dstport == 23 and f.telnet_data.strip()]
        self.t.assertGreaterEqual(len(sent), 3, "credentials typed by hydra")

    def p_http_basic_auth_bruteforce(self, lb, w):
        tgt = lb.targets[0]
        reqs = [f for f in w if f.ip_src == lb.attacker and f.ip_dst == tgt and "GET" in f.http_request_method]
        self.t.assertGreaterEqual(len(reqs), 4, "hydra http-get requests")
        resp = [(f.frame_time_epoch, c) for f in w if f.ip_src == tgt and f.ip_dst == lb.attacker
                for c in f.http_response_code]
        n401 = [t for t, c in resp if c == 401]
        n200 = [t for t, c in resp if c == 200]
        self.t.assertGreaterEqual(len(n401), 3, "401 answers")
        self.t.assertGreaterEqual(len(n200), 1, "a 200 once the password is found")
        self.t.assertLess(min(n401), max(n200), "401s come before the 200")

    def p_mqtt_bruteforce(self, lb, w):
        a = lb.attacker
        connects = mqtt_count(w, 1, src=a, dst=self.broker)
        refused = sum(f.mqtt_conack_val.count(5) for f in w if f.ip_src == self.broker and f.ip_dst == a)
        accepted = sum(f.mqtt_conack_val.count(0) for f in w if f.ip_src == self.broker and f.ip_dst == a)
        self.t.assertGreaterEqual(connects, 6, "CONNECT attempts")
        self.t.assertGreaterEqual(refused, 5, "CONNACK 5 refusals")
        self.t.assertGreaterEqual(accepted, 1, "one accepted CONNECT")

    def p_mqtt_wildcard_subscribe(self, lb, w):
        a = lb.attacker
        subs = [t for f in w if f.ip_src == a and 8 in f.mqtt_msgtype for t in f.mqtt_topic]
        self.t.assertIn("#", subs, "SUBSCRIBE '#'")
        refused = sum(f.mqtt_conack_val.count(5) for f in w if f.ip_src == self.broker and f.ip_dst == a)
        self.t.assertGreaterEqual(refused, 1, "anonymous attempt refused")
        self.t.assertGreaterEqual(mqtt_count(w, 3, src=self.broker, dst=a), 1, "messages delivered to the attacker")

    def p_mqtt_publish_flood(self, lb, w):
        n = mqtt_count(w, 3, src=lb.attacker, dst=self.broker)
        self.t.assertGreaterEqual(n, 1000, "PUBLISH messages in the flood")

    def p_mqtt_clientid_takeover(self, lb, w):
        a, victim = lb.attacker, lb.targets[1]
        ids = {c for f in w if f.ip_src == a and 1 in f.mqtt_msgtype for c in f.mqtt_clientid}
        self.t.assertTrue(ids, "attacker CONNECT with a client id")
        before = {c for f in self.frames if f.frame_time_epoch < lb.start and f.ip_src == victim
                  and 1 in f.mqtt_msgtype for c in f.mqtt_clientid}
        self.t.assertTrue(ids & before, "attacker reuses the victim's client id %s / %s" % (ids, before))
        kicked = [f for f in w if f.ip_src == self.broker and f.ip_dst == victim and f.tcp_srcport == 1883
                  and (f.tcp_flags_fin or f.tcp_flags_reset)]
        self.t.assertGreaterEqual(len(kicked), 1, "broker closes the victim's session")

    def p_coap_discovery_tamper(self, lb, w):
        a, tgt = lb.attacker, lb.targets[0]
        req = [f for f in w if f.ip_src == a and f.ip_dst == tgt and f.udp_dstport == 5683]
        codes = [c for f in req for c in f.coap_code]
        self.t.assertIn(3, codes, "CoAP PUT")
        self.t.assertIn(4, codes, "CoAP DELETE")
        self.t.assertTrue(any(".well-known" in f.coap_opt_uri_path and 1 in f.coap_code for f in req),
                          "GET /.well-known/core")
        resp = [c for f in w if f.ip_src == tgt and f.ip_dst == a for c in f.coap_code]
        self.t.assertIn(65, resp, "2.01 Created")
        self.t.assertIn(66, resp, "2.02 Deleted")

    def p_http_firmware_download(self, lb, w):
        a = lb.attacker
        path = re.search(r"downloads (\S+)", lb.notes).group(1)
        self.t.assertTrue(any(f.ip_src == a and f.http_request_uri == path for f in w), "GET of the image " + path)
        self.t.assertTrue(any(f.ip_src == self.broker and f.ip_dst == a and 200 in f.http_response_code for f in w))
        nbytes = sum(f.frame_len for f in w if f.ip_src == self.broker and f.ip_dst == a)
        self.t.assertGreater(nbytes, 200000, "firmware image bytes over plain HTTP")

    def p_mirai_telnet_login(self, lb, w):
        a, cam = lb.attacker, lb.targets[0]
        conns = [f for f in w if f.ip_src == a and f.ip_dst == cam and f.tcp_dstport == 23 and syn_only(f)]
        self.t.assertGreaterEqual(len(conns), 2, "one connection per credential pair")
        typed = "".join(f.telnet_data for f in w if f.ip_src == a and f.ip_dst == cam)
        for cmd in ("enable", "system", "shell", "sh", "/bin/busybox MIRAI"):
            self.t.assertIn(cmd, typed, "Mirai command %r" % cmd)
        answers = "".join(f.telnet_data for f in w if f.ip_src == cam and f.ip_dst == a)
        self.t.assertIn("Login incorrect", answers)
        self.t.assertIn("applet not found", answers)
        self.t.assertTrue(any(f.ip_src == cam and f.ip_dst == a and "mirai" in f.http_request_uri for f in w),
                          "the camera downloads the bot over HTTP")

    def p_lateral_movement(self, lb, w):
        cam = lb.attacker
        syns = [f for f in w if f.ip_src == cam and syn_only(f) and f.tcp_dstport in (23, 2323)]
        self.t.assertGreaterEqual(len({f.ip_dst for f in syns}), 5, "telnet scan from the infected device")
        rtr = lb.targets[1]
        answers = "".join(f.telnet_data for f in w if f.ip_src == rtr and f.ip_dst == cam)
        self.t.assertIn("Login incorrect", answers)
        self.t.assertTrue(any(f.ip_src == cam and f.udp_dstport == 5683 for f in w), "CoAP from the camera")
        self.t.assertTrue(any(f.ip_dst == cam and 401 in f.http_response_code for f in w), "HTTP 401 to the camera")

    def p_syn_flood_hping3(self, lb, w):
        m = re.search(r"-c (\d+)", lb.notes)
        self.t.assertIsNotNone(m)
        count = int(m.group(1))
        tgt = lb.targets[0]
        syns = [f for f in w if f.ip_src == lb.attacker and f.ip_dst == tgt and f.tcp_dstport == 1883 and syn_only(f)]
        self.t.assertGreaterEqual(len(syns), int(count * 0.98))
        self.t.assertLessEqual(len(syns), count)

    def p_device_silent(self, lb, w):
        v = lb.targets[0]
        quiet = [f for f in w if f.ip_src == v and f.ip_proto and lb.start + 1.0 < f.frame_time_epoch < lb.end - TOL]
        self.t.assertEqual(quiet, [], "silent device sent IP frames")
        before = [f for f in self.frames if f.ip_src == v and lb.start - 30 < f.frame_time_epoch < lb.start]
        self.t.assertTrue(before, "device was talking before")
        last = self.frames[-1].frame_time_epoch
        if last - lb.end > 16:
            after = [f for f in self.frames if f.ip_src == v and lb.end < f.frame_time_epoch < lb.end + 16]
            self.t.assertTrue(after, "device talks again after")

    # ---- benign ------------------------------------------------------------
    def benign_evidence(self, frames, host):
        ip, kind = host["ip"], kind_of(host["name"])
        b = self.broker
        if kind in ("temp", "hum", "plug", "thermo"):
            return mqtt_count(frames, 3, src=ip, dst=b)
        if kind == "soil":
            return sum(1 for f in frames if f.ip_src == ip and any(c >= 64 for c in f.coap_code))
        if kind == "cam":
            return sum(1 for f in frames if f.ip_src == ip and 200 in f.http_response_code)
        if kind == "rtr":
            return sum(1 for f in frames if f.ip_src == ip and "login" in f.telnet_data)
        if kind == "cloud":
            return min(mqtt_count(frames, 3, src=ip), sum(1 for f in frames if f.ip_src == ip and 200 in f.http_response_code))
        if kind == "hub":
            return min(sum(1 for f in frames if f.ip_src == ip and f.udp_dstport == 5683),
                       sum(1 for f in frames if f.ip_src == ip and "GET" in f.http_request_method))
        if kind == "ops":
            return sum(1 for f in frames if f.ip_src == ip and f.tcp_dstport == 23)
        return None

    def check_benign(self, frames, what):
        for h in self.hosts:
            n = self.benign_evidence(frames, h)
            if n is None:
                continue
            with self.t.subTest(host=h["name"], part=what):
                self.t.assertGreater(n, 0, "no benign traffic of %s %s" % (h["name"], what))

    def check_benign_before_after(self):
        if not self.labels:
            self.check_benign(self.frames, "in a benign-only capture")
            return
        first = min(lb.start for lb in self.labels)
        last = max(lb.end for lb in self.labels)
        self.check_benign([f for f in self.frames if f.frame_time_epoch < first], "before the attacks")
        self.check_benign([f for f in self.frames if f.frame_time_epoch > last], "after the attacks")

    def check_attacker_quiet_outside(self):
        atk = self.by_name["atk"]["ip"]
        wins = [(lb.start - TOL, lb.end + TOL) for lb in self.labels]
        stray = [f for f in self.frames if f.ip_src == atk and f.ip_proto
                 and not any(s <= f.frame_time_epoch <= e for s, e in wins)]
        self.t.assertEqual(len(stray), 0, "attacker IP frames outside label windows: %s" % stray[:3])

    def check_no_attack_signs(self, mistyped=()):
        """No sign of an attack; a `Login incorrect` only inside the windows
        of an operator's mistyped login (`mistyped`: (start, end) pairs)."""
        self.t.assertEqual(sum(f.mqtt_conack_val.count(5) for f in self.frames), 0, "CONNACK refusals")
        self.t.assertEqual(sum(f.http_response_code.count(401) for f in self.frames), 0, "HTTP 401")
        self.t.assertNotIn("#", [t for f in self.frames if 8 in f.mqtt_msgtype for t in f.mqtt_topic])
        syns = sorted(f.frame_time_epoch for f in self.frames if syn_only(f))
        busiest = max((bisect.bisect_left(syns, t + SYN_STORM_SECONDS) - i for i, t in enumerate(syns)), default=0)
        self.t.assertLess(busiest, SYN_STORM_COUNT, "SYN storm: connection attempts in %g s" % SYN_STORM_SECONDS)
        fails = [f for f in self.frames if "Login incorrect" in f.telnet_data
                 and not any(s - TOL <= f.frame_time_epoch <= e + TOL for s, e in mistyped)]
        self.t.assertEqual(fails, [], "Login incorrect outside a mistyped login")

    # ---- the drawn network on the wire ----------------------------------
    def check_hosts_on_the_wire(self, subnet, silent=()):
        """Every IPv4 and ARP sender is a host of hosts.csv with its MAC, on the
        drawn subnet; every host but those in `silent` is seen."""
        net = ipaddress.ip_network(subnet)
        mac_of = {h["ip"]: h["mac"] for h in self.hosts}
        seen = set()
        for f in self.frames:
            ip = f.ip_src or f.arp_src_proto_ipv4
            if not ip:
                continue
            self.t.assertIn(ipaddress.ip_address(ip), net, "sender outside %s" % subnet)
            self.t.assertEqual(mac_of.get(ip), f.eth_src, "MAC of %s on the wire" % ip)
            seen.add(ip)
        self.t.assertEqual(seen | {h["ip"] for h in self.hosts if h["name"] in silent}, set(mac_of))

    def check_identities_on_the_wire(self, plan):
        """What the devices show on the wire is what the plan drew: MQTT
        client ids, users and topics, HTTP User-Agents, telnet prompts."""
        broker = self.broker
        frames = [f for f in self.frames if not any(lb.start - TOL <= f.frame_time_epoch <= lb.end + TOL
                                                    for lb in self.labels)]
        for h in plan["hosts"]:
            ip = h["ip"]
            if h["kind"] in iotlab.MQTT_KINDS:
                with self.t.subTest(host=h["name"], what="mqtt"):
                    connects = [f for f in frames if f.ip_src == ip and f.ip_dst == broker and 1 in f.mqtt_msgtype]
                    self.t.assertTrue(connects, "CONNECTs of %s" % h["name"])
                    self.t.assertEqual({u for f in connects for u in f.mqtt_username}, {h["mqtt_user"]})
                    ids = {c for f in connects for c in f.mqtt_clientid}
                    if h["kind"] == "hum" and h["client_id_suffix"]:
                        pattern = re.escape(h["client_id"]) + "-[0-9a-f]{4}"
                        self.t.assertTrue(all(re.fullmatch(pattern, c) for c in ids), ids)
                    else:
                        self.t.assertEqual(ids, {h["client_id"]} | ({h["cmd_client_id"]} if "cmd_client_id" in h
                                                                    else set()))
                    if "topic" in h:
                        topics = {t for f in frames if f.ip_src == ip and 3 in f.mqtt_msgtype for t in f.mqtt_topic}
                        self.t.assertEqual(topics, {h["topic"]})
            if h["kind"] in ("cam", "thermo"):
                with self.t.subTest(host=h["name"], what="http"):
                    agents = {f.http_user_agent for f in frames if f.ip_src == ip and f.http_request_method}
                    self.t.assertEqual(agents, {h["user_agent"]})
            if h["kind"] in ("cam", "rtr"):
                with self.t.subTest(host=h["name"], what="telnet"):
                    said = "".join(f.telnet_data for f in self.frames if f.ip_src == ip and f.tcp_srcport == 23)
                    if said:   # a camera nobody logged into says nothing
                        self.t.assertIn("%s login: " % h["hostname"], said)

    # ---- benign irregular events ------------------------------------------
    def check_irregular(self, ev, plan):
        w = window(self.frames, ev.start, ev.end)
        self.t.assertTrue(w, "%s: no frames in its window" % ev.event)
        getattr(self, "i_" + ev.event)(ev, w, plan)

    def i_coap_discovery(self, ev, w, plan):
        req = [f for f in w if f.ip_src == ev.src and f.ip_dst == ev.dst and 1 in f.coap_code]
        self.t.assertTrue(any(f.coap_opt_uri_path.split("|") == [".well-known", "core"] for f in req),
                          "GET /.well-known/core")
        self.t.assertTrue(any(f.ip_src == ev.dst and f.ip_dst == ev.src and 69 in f.coap_code for f in w), "2.05")

    def i_telnet_login_mistyped(self, ev, w, plan):
        # the session with the failure (a periodic operator login may run beside it)
        answers = [f for f in w if f.ip_src == ev.dst and f.ip_dst == ev.src and f.tcp_srcport == 23]
        failed = [f for f in answers if "Login incorrect" in f.telnet_data]
        self.t.assertEqual(len(failed), 1, "one Login incorrect")
        stream = failed[0].tcp_stream
        opened = [f for f in w if f.tcp_stream == stream and f.ip_src == ev.src and syn_only(f)]
        self.t.assertEqual(len(opened), 1, "the operator opened the session inside the window")
        self.t.assertTrue(any("load average" in f.telnet_data for f in answers
                              if f.tcp_stream == stream and f.frame_time_epoch > failed[0].frame_time_epoch),
                          "the second login of the same session gets a shell (uptime answers)")

    def i_firmware_download(self, ev, w, plan):
        dev = next(h for h in plan["hosts"] if h["ip"] == ev.src)
        fw = plan["firmware"][dev["firmware"]]
        image = [f for f in w if f.ip_src == ev.src and f.ip_dst == ev.dst and f.http_request_uri == fw["image"]]
        self.t.assertEqual(len(image), 1, "one GET of the image " + fw["image"])
        # the update's connection (a periodic manifest check may run beside it)
        conn = [f for f in w if f.tcp_stream == image[0].tcp_stream]
        reqs = [f for f in conn if "GET" in f.http_request_method]
        self.t.assertEqual([f.http_request_uri for f in reqs], [fw["manifest"], fw["image"]])
        self.t.assertEqual({f.http_user_agent for f in reqs}, {dev["user_agent"]})
        self.t.assertEqual([c for f in conn if f.ip_src == ev.dst for c in f.http_response_code], [200, 200])
        nbytes = sum(f.frame_len for f in conn if f.ip_src == ev.dst)
        self.t.assertGreater(nbytes, fw["size"], "the whole image on the wire")

    def i_device_reboot(self, ev, w, plan):
        dev = next(h for h in plan["hosts"] if h["ip"] == ev.src)
        offset = ev.start - self.frames[0].frame_time_epoch
        silence = min((e for e in plan["benign_irregular"] if e["kind"] == "device_reboot" and e["src"] == ev.src),
                      key=lambda e: abs(e["t"] - offset))["params"]["silence"]
        mine = [f for f in w if f.eth_src == dev["mac"]]
        announce = [f for f in mine if f.arp_src_proto_ipv4 == dev["ip"] and f.arp_dst_proto_ipv4 == dev["ip"]]
        self.t.assertTrue(announce, "unsolicited ARP after the link comes up")
        back = announce[0].frame_time_epoch
        self.t.assertGreaterEqual(back - ev.start, silence - TOL, "silent for the planned time")
        early = [f for f in mine if f.frame_time_epoch < back]
        self.t.assertEqual([f for f in early if f.frame_time_epoch > ev.start + TOL], [],
                           "nothing leaves once the link is down (only what was on its way as it went down)")
        self.t.assertFalse([f for f in early if f.tcp_flags_fin or f.tcp_flags_reset],
                           "no FIN or RST: the TCP state is lost with the power")
        after = [f for f in w if f.frame_time_epoch >= back]
        self.t.assertTrue(any(f.ip_src == dev["ip"] and f.ip_dst == self.broker and f.tcp_dstport == 1883
                              and syn_only(f) for f in after), "new TCP connection to the broker")
        ids = [c for f in after if f.ip_src == dev["ip"] and 1 in f.mqtt_msgtype for c in f.mqtt_clientid]
        self.t.assertIn(dev["client_id"], ids, "CONNECT with the device's client id")
        self.t.assertIn(0, [c for f in after if f.ip_src == self.broker and f.ip_dst == dev["ip"]
                            for c in f.mqtt_conack_val], "CONNACK accepted")


def plan(seed, duration=RUN_DURATION, phases="all", hashseed="0"):
    """The plan as `--plan-only` prints it (a process of its own)."""
    r = subprocess.run([sys.executable, LAB, "--plan-only", "--seed", str(seed), "--duration", str(duration),
                        "--phases", phases], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True,
                       env=dict(os.environ, PYTHONHASHSEED=hashseed))
    return json.loads(r.stdout)


def plans(seeds, duration=RUN_DURATION, phases="all"):
    return [iotlab.make_plan(s, duration, iotlab.parse_phases(phases)) for s in seeds]


def ieee_ouis():
    """MA-L assignments of Debian's ieee-data: OUI -> organisation."""
    with open(OUI_CSV, newline="", encoding="utf-8") as f:
        return {r["Assignment"].upper(): r["Organization Name"] for r in csv.DictReader(f) if r["Registry"] == "MA-L"}


def json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def lab_netns():
    out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, check=True).stdout.decode()
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def root_links():
    """Interfaces of the root namespace named like the lab's bridge and ports."""
    out = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE, check=True).stdout.decode()
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return sorted(n for n in names if re.fullmatch(r"br0|p\d+", n))


def processes_mentioning(text):
    hits = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd:
            hits.append((int(pid), cmd))
    return hits


def starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def setUpModule():
    if IS_ROOT:
        # package installation (first run on a new machine) is not part of the timed runs
        subprocess.run([sys.executable, LAB, "--install-only"], check=True, timeout=1500)


class CleanupMixin:
    def assert_clean(self, outdir):
        with open(os.path.join(outdir, "pids.json")) as f:
            reg = json.load(f)
        prefix = reg["prefix"]
        self.assertTrue(reg["processes"], "registry lists the processes started")
        self.assertEqual([n for n in lab_netns() if n.startswith(prefix)], [], "namespaces left")
        alive = [p for p in reg["processes"] if p["starttime"] is not None and starttime(p["pid"]) == p["starttime"]]
        self.assertEqual(alive, [], "registered processes still alive")
        self.assertEqual(processes_mentioning(prefix), [], "processes mentioning the run prefix")
        self.assertFalse(os.path.exists(reg["tmpdir"]), "temp dir left")
        self.assertFalse(os.path.exists("/run/swlab/%s.json" % prefix), "state file left")


class PlanTests(unittest.TestCase):
    def test_same_seed_same_plan(self):
        self.assertEqual(plan(11), plan(11))
        self.assertEqual(plan(12, 600, "none", hashseed="1"), plan(12, 600, "none", hashseed="2"),
                         "independent of Python's hash seed")

    def test_network_names_and_periods_vary_across_seeds(self):
        pls = plans(range(1, 9))
        per_seed = lambda key: [tuple(h.get(key) for h in pl["hosts"]) for pl in pls]  # noqa: E731
        self.assertEqual(len({pl["subnet"] for pl in pls}), 8, "subnets")
        for key in ("mac", "ip", "wire_name", "client_id", "mqtt_user", "topic", "period", "keepalive"):
            self.assertEqual(len(set(per_seed(key))), 8, key)
        macs = [{h["mac"] for h in pl["hosts"]} for pl in pls]
        self.assertEqual(sum(len(m) for m in macs), len(set().union(*macs)), "no MAC shared between seeds")
        for key in ("root", "layout"):
            self.assertGreater(len({pl["mqtt"][key] for pl in pls}), 1, "topic tree " + key)
        self.assertGreater(len({pl["operator"] for pl in pls}), 1, "operator user")
        self.assertGreater(len({json.dumps(pl["firmware"], sort_keys=True) for pl in pls}), 1, "firmware files")
        self.assertGreater(len({json.dumps(pl["polls"], sort_keys=True) for pl in pls}), 1, "poll intervals")
        webs = {(h["web"]["path"], h["web"]["user"], h["web"]["realm"]) for pl in pls for h in pl["hosts"] if "web" in h}
        self.assertGreater(len({w[0] for w in webs}), 2, "admin paths")
        self.assertGreater(len({w[2] for w in webs}), 2, "realms")

    def test_addresses_are_private_unique_and_in_the_subnet(self):
        blocks = set()
        for pl in plans(range(200), 600, "none"):
            net = ipaddress.ip_network(pl["subnet"])
            self.assertEqual(net.prefixlen, 24)
            block = [b for b in RFC1918 if net.subnet_of(b)]
            self.assertEqual(len(block), 1, pl["subnet"])
            blocks.add(block[0])
            ips = [ipaddress.ip_address(h["ip"]) for h in pl["hosts"]]
            self.assertEqual(len(set(ips)), len(ips), "unique addresses")
            for ip in ips:
                self.assertIn(ip, net)
                self.assertNotIn(int(ip) & 0xFF, (0, 255), "network or broadcast address")
        self.assertEqual(blocks, set(RFC1918), "all three private blocks are drawn")

    def test_every_oui_is_a_real_ieee_assignment(self):
        registered = ieee_ouis()
        for oui, org in sorted(iotlab.OUI_ORG.items()):
            self.assertEqual(registered.get(oui), org, "OUI %s" % oui)
        for vendor, ouis in iotlab.VENDOR_OUIS.items():
            self.assertTrue(set(ouis) <= set(iotlab.OUI_ORG), vendor)

    def test_macs_carry_a_vendor_oui_of_their_kind(self):
        registered = ieee_ouis()
        for pl in plans(range(100)):
            macs = [h["mac"] for h in pl["hosts"]]
            self.assertEqual(len(set(macs)), len(macs), "unique MACs")
            for h in pl["hosts"]:
                octets = [int(x, 16) for x in h["mac"].split(":")]
                self.assertEqual(len(octets), 6)
                self.assertEqual(octets[0] & 1, 0, "unicast " + h["mac"])
                self.assertEqual(octets[0] & 2, 0, "globally administered " + h["mac"])
                org = registered.get(h["mac"].replace(":", "")[:6].upper())
                self.assertIsNotNone(org, h["mac"])
                self.assertTrue(any(v.lower() in org.lower() for v in KIND_ORGS[h["kind"]]), (h["kind"], org))
                self.assertEqual(h["vendor"], org)

    def test_identities_are_drawn_and_hold_no_password(self):
        for pl in plans(range(60)):
            root = pl["mqtt"]["root"]
            names = {h["name"] for h in pl["hosts"]}
            mqtt = [h for h in pl["hosts"] if h["kind"] in iotlab.MQTT_KINDS]
            for key in ("mqtt_user", "client_id"):
                values = [h[key] for h in mqtt]
                self.assertEqual(len(set(values)), len(values), key + " unique")
                self.assertFalse(set(values) & names, key + " is not the hosts.csv name")
            self.assertFalse({h["mqtt_user"] for h in mqtt} & {"admin", "mqtt"}, "users the brute force tries")
            topics = [h[k] for h in mqtt for k in ("topic", "cmd_topic") if k in h]
            self.assertEqual(len(set(topics)), len(topics))
            self.assertTrue(all(t.startswith(root + "/") for t in topics))
            for h in pl["hosts"]:
                if h["kind"] == "cam":
                    self.assertIn(h["telnet_user"], {u for u, _ in iotlab.MIRAI_DEFAULTS})
                if "web" in h:
                    self.assertTrue(h["web"]["path"].startswith("/") and h["web"]["path"].endswith("/"))
                if h["kind"] == "thermo":
                    self.assertNotEqual(h["web"]["path"], "/cgi-bin/", "busybox httpd runs /cgi-bin/ as CGI")
            strings = set(json_strings(pl))
            for word in SECRET_WORDS:
                self.assertNotIn(word, strings)
            text = json.dumps(pl)
            for word in ("xc3511", "vizxv", "xmhdipc", "juantech", "plug1234", "smartplug", "admin123", "pass1234"):
                self.assertNotIn(word, text)

    def test_periods_are_drawn_within_their_ranges(self):
        ranges = {"temp": (3.0, 10.0), "hum": (7.0, 14.0), "plug": (5.0, 15.0), "thermo": (6.0, 15.0)}
        for pl in plans(range(100)):
            for h in pl["hosts"]:
                if h["kind"] in ranges:
                    lo, hi = ranges[h["kind"]]
                    self.assertTrue(lo <= h["period"] <= hi, (h["kind"], h["period"]))
                for key in ("keepalive", "cmd_keepalive"):
                    if key in h:
                        self.assertTrue(15 <= h[key] <= 120, (key, h[key]))
            for lo, hi in pl["polls"].values():
                self.assertLess(lo, hi)

    def test_irregular_events_are_planned_outside_the_phases(self):
        for pl in plans(range(40), 300):
            windows = [(p["start_offset"], p["start_offset"] + p["budget"]) for p in pl["phases"]]
            for ev in pl["benign_irregular"]:
                end = ev["t"] + ev["seconds"]
                self.assertLessEqual(end, pl["duration"])
                for s, e in windows:
                    self.assertTrue(end < s or ev["t"] > e, (ev, s, e))
        for pl in plans(range(40), IRREGULAR_DURATION, "none"):
            kinds = [ev["kind"] for ev in pl["benign_irregular"]]
            soils = [h for h in pl["hosts"] if h["kind"] == "soil"]
            self.assertEqual(kinds.count("coap_discovery"), len(soils), "one discovery per CoAP server")
            self.assertTrue(all(ev["t"] < 2 for ev in pl["benign_irregular"] if ev["kind"] == "coap_discovery"),
                            "at the hub's start-up")
            for kind in ("telnet_login_mistyped", "firmware_download", "device_reboot"):
                self.assertIn(kind, kinds)
        long_run = plans([301], 1800, "none")[0]["benign_irregular"]
        for kind in ("telnet_login_mistyped", "firmware_download", "device_reboot"):
            self.assertGreater([ev["kind"] for ev in long_run].count(kind), 1, kind)

    def test_different_seeds_differ(self):
        plans = [plan(s) for s in (1, 2, 3, 4)]
        self.assertNotEqual(plans[0], plans[1])
        orders = {tuple(p["name"] for p in pl["phases"]) for pl in plans}
        self.assertGreater(len(orders), 1, "phase order follows the seed")
        mixes = {tuple(h["name"] for h in pl["hosts"]) for pl in plans}
        self.assertGreater(len(mixes), 1, "device mix follows the seed")

    def test_plan_fits_duration_and_phases_are_bounded(self):
        pl = plan(5)
        self.assertEqual(sorted(p["name"] for p in pl["phases"]), sorted(set(p["name"] for p in pl["phases"])))
        self.assertEqual(len(pl["phases"]), 13)
        spans = [(p["start_offset"], p["start_offset"] + p["budget"]) for p in pl["phases"]]
        for (s1, e1), (s2, _) in zip(spans, spans[1:]):
            self.assertLess(e1, s2, "phases do not overlap")
        self.assertGreaterEqual(spans[0][0], pl["warmup"])
        self.assertLessEqual(spans[-1][1], pl["duration"] - pl["tail"])
        names = [p["name"] for p in pl["phases"]]
        self.assertLess(names.index("mirai_telnet_login"), names.index("lateral_movement"))

    def test_phase_subset_and_none(self):
        pl = plan(3, 90, "mqtt_bruteforce,syn_flood_hping3")
        self.assertEqual(sorted(p["name"] for p in pl["phases"]), ["mqtt_bruteforce", "syn_flood_hping3"])
        self.assertEqual(plan(3, 60, "none")["phases"], [])

    def test_too_short_or_unknown_is_refused(self):
        for args in (["--duration", "60", "--phases", "all"], ["--phases", "nope"]):
            r = subprocess.run([sys.executable, LAB, "--plan-only"] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 2, args)


class RealRun(CleanupMixin):
    """One real run of the lab (SEED, DURATION, PHASES), judged from its
    capture; the plan it is compared with comes from a `--plan-only` process."""

    SEED = DURATION = PHASES = None

    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="swlab-test-")
        with open("/etc/passwd", "rb") as f:
            cls.passwd_before = f.read()
        cls.links_before = root_links()
        cls.t_start = time.time()
        cls.proc = subprocess.run([sys.executable, LAB, "--seed", str(cls.SEED), "--duration", str(cls.DURATION),
                                   "--phases", cls.PHASES, "--out", cls.out], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=cls.DURATION + 120)
        cls.elapsed = time.time() - cls.t_start
        cls.plan = plan(cls.SEED, cls.DURATION, cls.PHASES)
        cls.judge = None

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["rm", "-rf", cls.out])

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr.decode()[-2000:])
        if type(self).judge is None:
            type(self).judge = Judge(self, self.out)
        self.judge.t = self

    def test_hosts_csv_is_the_plan(self):
        hosts = [(h["ip"], h["mac"], h["name"]) for h in read_hosts(os.path.join(self.out, "hosts.csv"))]
        self.assertEqual(hosts, [(h["ip"], h["mac"], h["name"]) for h in self.plan["hosts"]])

    def test_hosts_and_subnet_on_the_wire(self):
        self.judge.check_hosts_on_the_wire(self.plan["subnet"], silent=() if self.plan["phases"] else ("atk",))

    def test_identities_on_the_wire(self):
        self.judge.check_identities_on_the_wire(self.plan)

    def test_irregular_events_agree_with_the_capture(self):
        events = read_events(os.path.join(self.out, "benign_irregular.csv"))
        self.assertEqual(sorted((e.event, e.src, e.dst) for e in events),
                         sorted((e["kind"], e["src"], e["dst"]) for e in self.plan["benign_irregular"]))
        for ev in events:
            with self.subTest(event=ev.event, start=ev.start):
                self.judge.check_irregular(ev, self.plan)
        for lb in self.judge.labels:
            self.assertFalse([e for e in events if e.start <= lb.end and e.end >= lb.start],
                             "irregular event inside phase %s" % lb.phase)

    def test_outputs_and_test_output_hold_no_password(self):
        texts = [self.proc.stdout.decode(errors="replace"), self.proc.stderr.decode(errors="replace")]
        for name in os.listdir(self.out):
            if name.endswith((".csv", ".txt", ".json")):
                with open(os.path.join(self.out, name), errors="replace") as f:
                    texts.append(f.read())
        words = [w for w in SECRET_WORDS if not w.isdigit()]
        for text in texts:
            for word in words:
                self.assertNotIn(word, text)

    def test_teardown_left_nothing(self):
        self.assert_clean(self.out)
        self.assertEqual(root_links(), self.links_before, "interfaces of the root namespace changed")
        with open("/etc/passwd", "rb") as f:
            self.assertEqual(f.read(), self.passwd_before, "host accounts untouched")


@unittest.skipUnless(IS_ROOT, "the lab needs root")
class LabRunTests(RealRun, unittest.TestCase):
    """One real run with every phase (about three minutes)."""

    SEED, DURATION, PHASES = RUN_SEED, RUN_DURATION, "all"

    def test_run_is_short(self):
        # The planned duration, plus setting up and tearing down the lab.
        self.assertLess(self.elapsed, self.DURATION + 30)

    def test_labels_follow_the_plan(self):
        self.assertEqual([lb.phase for lb in self.judge.labels], [p["name"] for p in self.plan["phases"]])
        for lb, ph in zip(self.judge.labels, self.plan["phases"]):
            self.assertEqual((lb.attacker, lb.targets), (ph["attacker_ip"], ph["target_ips"]))
        self.assertIn([self.plan["subnet"]], [lb.targets[:1] for lb in self.judge.labels], "scans name the subnet")

    def test_each_phase_is_in_its_window(self):
        for lb in self.judge.labels:
            with self.subTest(phase=lb.phase):
                self.judge.check_phase(lb)

    def test_benign_before_and_after(self):
        self.judge.check_benign_before_after()

    def test_attacker_quiet_outside_windows(self):
        self.judge.check_attacker_quiet_outside()


@unittest.skipUnless(IS_ROOT, "the lab needs root")
class IrregularRunTests(RealRun, unittest.TestCase):
    """A short benign run, another seed: every kind of irregular event."""

    SEED, DURATION, PHASES = IRREGULAR_SEED, IRREGULAR_DURATION, "none"

    def test_every_kind_of_irregular_event_happened(self):
        kinds = {e.event for e in read_events(os.path.join(self.out, "benign_irregular.csv"))}
        self.assertEqual(kinds, {"coap_discovery", "telnet_login_mistyped", "firmware_download", "device_reboot"})

    def test_another_seed_another_network(self):
        other = plan(RUN_SEED)
        self.assertNotEqual(self.plan["subnet"], other["subnet"])
        self.assertFalse({h["mac"] for h in self.plan["hosts"]} & {h["mac"] for h in other["hosts"]})

    def test_benign_traffic_and_no_attack(self):
        self.assertEqual(self.judge.labels, [])
        self.judge.check_benign_before_after()
        mistyped = [(e.start, e.end) for e in read_events(os.path.join(self.out, "benign_irregular.csv"))
                    if e.event == "telnet_login_mistyped"]
        self.judge.check_no_attack_signs(mistyped)


@unittest.skipUnless(IS_ROOT, "the lab needs root")
class InterruptTests(unittest.TestCase, CleanupMixin):
    def test_sigterm_mid_run_tears_down(self):
        out = tempfile.mkdtemp(prefix="swlab-test-int-")
        try:
            p = subprocess.Popen([sys.executable, LAB, "--seed", "3", "--duration", "200", "--phases", "all",
                                  "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            line = p.stdout.readline().decode()
            self.assertIn("capture started", line)
            prefix = line.split("prefix")[1].strip()
            time.sleep(22)  # into the first attack phase
            self.assertTrue([n for n in lab_netns() if n.startswith(prefix)], "lab is up")
            self.assertTrue(processes_mentioning(prefix), "lab processes are running")
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=40)
            self.assertEqual(p.returncode, 143, err.decode()[-1500:])
            self.assert_clean(out)
            self.assertTrue(os.path.getsize(os.path.join(out, "capture.pcap")) > 0)
            with open(os.path.join(out, "summary.txt")) as f:
                self.assertIn("verdict interrupted", f.read())
        finally:
            subprocess.run(["rm", "-rf", out])


class SampleTests(unittest.TestCase):
    """The bundled samples' labels line up with their traffic."""

    def judge(self, name):
        d = os.path.join(SAMPLES, name)
        for f in ("capture.pcap", "labels.csv", "hosts.csv"):
            self.assertTrue(os.path.exists(os.path.join(d, f)), f)
        return Judge(self, d)

    def test_attack_sample(self):
        j = self.judge("attack")
        self.assertGreaterEqual(len(j.labels), 8)
        for lb in j.labels:
            with self.subTest(phase=lb.phase):
                j.check_phase(lb)
        j.check_benign_before_after()
        j.check_attacker_quiet_outside()

    def test_attack_sample_follows_its_recorded_plan(self):
        """The samples predate the seeded network variation: their plan.json is
        the plan they were made from."""
        with open(os.path.join(SAMPLES, "attack", "plan.json")) as f:
            recorded = json.load(f)
        labels = read_labels(os.path.join(SAMPLES, "attack", "labels.csv"))
        self.assertEqual([lb.phase for lb in labels], [p["name"] for p in recorded["phases"]])
        hosts = read_hosts(os.path.join(SAMPLES, "attack", "hosts.csv"))
        self.assertEqual([(h["ip"], h["mac"], h["name"]) for h in hosts],
                         [(h["ip"], h["mac"], h["name"]) for h in recorded["hosts"]])

    def test_benign_sample(self):
        j = self.judge("benign")
        self.assertEqual(j.labels, [])
        j.check_benign_before_after()
        j.check_no_attack_signs()


if __name__ == "__main__":
    unittest.main()
