"""Tests of the IoT lab generator; tshark is the independent judge.

Run from the repository root, as root:
    python3 -m unittest discover -s datasets/lab -v
"""

import csv
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
REPO = os.path.dirname(os.path.dirname(HERE))
LAB = os.path.join(HERE, "iotlab.py")
SAMPLES = os.path.join(REPO, "datasets", "samples")
PREFIX = "swlab-"
RUN_SEED = 7
RUN_DURATION = 155
TOL = 0.25  # seconds of clock tolerance around a label window

IS_ROOT = os.geteuid() == 0

FIELDS = ["frame.time_epoch", "frame.len", "ip.src", "ip.dst", "ip.proto", "icmp.type", "tcp.srcport",
          "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.flags.reset", "udp.srcport",
          "udp.dstport", "mqtt.msgtype", "mqtt.conack.val", "mqtt.clientid", "mqtt.topic", "coap.code",
          "coap.opt.uri_path", "http.request.method", "http.request.uri", "http.response.code", "telnet.data"]
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
            "" if icmp else v["telnet.data"]))
    return frames


Label = namedtuple("Label", "start end phase attacker targets tool notes")


def read_labels(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [Label(float(r["start_epoch"]), float(r["end_epoch"]), r["phase"], r["attacker_ip"],
                  [t for t in r["target_ips"].split(";") if t], r["tool"], r["notes"]) for r in rows]


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
        self.t.assertTrue(any(f.ip_src == a and f.http_request_uri.endswith(".bin") for f in w), "GET of a .bin")
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

    def check_no_attack_signs(self):
        self.t.assertEqual(sum(f.mqtt_conack_val.count(5) for f in self.frames), 0, "CONNACK refusals")
        self.t.assertEqual(sum(f.http_response_code.count(401) for f in self.frames), 0, "HTTP 401")
        self.t.assertNotIn("#", [t for f in self.frames if 8 in f.mqtt_msgtype for t in f.mqtt_topic])
        self.t.assertLess(sum(1 for f in self.frames if syn_only(f)), 300, "SYN storm")
        self.t.assertFalse(any("Login incorrect" in f.telnet_data for f in self.frames))


def plan(seed, duration=RUN_DURATION, phases="all"):
    r = subprocess.run([sys.executable, LAB, "--plan-only", "--seed", str(seed), "--duration", str(duration),
                        "--phases", phases], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return json.loads(r.stdout)


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


@unittest.skipUnless(IS_ROOT, "the lab needs root")
class LabRunTests(unittest.TestCase, CleanupMixin):
    """One real run with every phase (about three minutes)."""

    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="swlab-test-")
        with open("/etc/passwd", "rb") as f:
            cls.passwd_before = f.read()
        cls.links_before = root_links()
        cls.t_start = time.time()
        cls.proc = subprocess.run([sys.executable, LAB, "--seed", str(RUN_SEED), "--duration", str(RUN_DURATION),
                                   "--phases", "all", "--out", cls.out], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=RUN_DURATION + 120)
        cls.elapsed = time.time() - cls.t_start
        cls.judge = None

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["rm", "-rf", cls.out])

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr.decode()[-2000:])
        if LabRunTests.judge is None:
            LabRunTests.judge = Judge(self, self.out)
        self.judge.t = self

    def test_run_is_short(self):
        self.assertLess(self.elapsed, 180)

    def test_labels_follow_the_plan(self):
        pl = plan(RUN_SEED)
        self.assertEqual([lb.phase for lb in self.judge.labels], [p["name"] for p in pl["phases"]])
        hosts = [(h["ip"], h["mac"], h["name"]) for h in read_hosts(os.path.join(self.out, "hosts.csv"))]
        self.assertEqual(hosts, [(h["ip"], h["mac"], h["name"]) for h in pl["hosts"]])

    def test_each_phase_is_in_its_window(self):
        for lb in self.judge.labels:
            with self.subTest(phase=lb.phase):
                self.judge.check_phase(lb)

    def test_benign_before_and_after(self):
        self.judge.check_benign_before_after()

    def test_attacker_quiet_outside_windows(self):
        self.judge.check_attacker_quiet_outside()

    def test_capture_is_ipv4_on_the_lab_subnet_only(self):
        bad = [f for f in self.judge.frames if f.ip_src and not f.ip_src.startswith("10.77.0.")]
        self.assertEqual(bad, [])

    def test_teardown_left_nothing(self):
        self.assert_clean(self.out)
        self.assertEqual(root_links(), self.links_before, "interfaces of the root namespace changed")
        with open("/etc/passwd", "rb") as f:
            self.assertEqual(f.read(), self.passwd_before, "host accounts untouched")


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

    def test_attack_sample_order_is_the_seeded_plan(self):
        with open(os.path.join(SAMPLES, "attack", "plan.json")) as f:
            recorded = json.load(f)
        phases = ",".join(sorted(p["name"] for p in recorded["phases"]))
        pl = plan(recorded["seed"], recorded["duration"], phases)
        labels = read_labels(os.path.join(SAMPLES, "attack", "labels.csv"))
        self.assertEqual([lb.phase for lb in labels], [p["name"] for p in pl["phases"]])

    def test_benign_sample(self):
        j = self.judge("benign")
        self.assertEqual(j.labels, [])
        j.check_benign_before_after()
        j.check_no_attack_signs()


if __name__ == "__main__":
    unittest.main()
