"""spanwatch's device inventory and feature windows against independent truth.

- Inventory: `spanwatch devices --json` against the lab's hosts.csv (MAC, IP,
  role), its labels.csv, tshark's dissection and the IEEE registry of Debian's
  ieee-data.
- Features: `spanwatch replay --windows` against datasets/features_tshark.py
  (the feature definitions computed from tshark's fields), every (device,
  window, feature).

On ../shared/lab-sample and the bundled samples, and, as root, on two fresh
runs of the lab generator with their own seeds (every attack phase). Run from
the repository root:
    python3 -m unittest discover -s datasets/lab -v
The spanwatch binary is $SPANWATCH, else built with cargo (debug).
"""

import csv
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAB = os.path.join(HERE, "iotlab.py")
SHARED_SAMPLE = os.path.join(REPO, "..", "shared", "lab-sample")
SAMPLES = os.path.join(REPO, "datasets", "samples")
IEEE_DATA = "/usr/share/ieee-data"
IS_ROOT = os.geteuid() == 0

sys.path.insert(0, os.path.join(REPO, "datasets"))
import features_tshark  # noqa: E402  (datasets/ is not a package)

# Two fresh lab runs with seeds of their own (the shared sample is seed 1,
# the lab's own tests use 7 and 22), each as short as its phases allow
# (iotlab.py refuses shorter): (seed, seconds, phases left out of "all").
# The second leaves out the 50 s outage of device_silent, which counts
# nothing the comparisons do not see in the first.
RUNS = ((31, 200, ()), (32, 150, ("device_silent",)))

# The features, each of which must be non-zero somewhere in a capture
# with attacks, so that the comparison is not vacuous.
KEY_FEATURES = ["packets_out", "packets_in", "bytes_out", "bytes_in", "flows_out", "tcp_refused_out", "peers",
                "dst_ports", "mqtt_publish_out", "http_401", "telnet_login_failed"]

# hosts.csv's role column -> roles spanwatch must find. The device type is the
# text before the first ':' (the whole text when there is none); each phrase
# found in it adds its roles: (phrase, required, allowed besides, why).
ROLE_MAP = [
    ("mqtt broker", {"mqtt-broker"}, set(), ""),
    ("update server", {"http-server"}, set(), ""),
    ("home gateway", {"mqtt-client", "coap-client", "http-client"}, set(), ""),
    ("operator workstation", {"telnet-client"}, set(), ""),
    ("temperature sensor", {"mqtt-client"}, set(), ""),
    ("humidity sensor", {"mqtt-client"}, set(), ""),
    ("smart plug", {"mqtt-client"}, set(), ""),
    ("soil sensor", {"coap-server"}, set(), ""),
    ("ip camera", {"http-server"}, {"http-client"}, "its firmware update checks"),
    ("thermostat", {"http-server", "mqtt-client"}, {"http-client"}, "its firmware update checks"),
    ("router", {"telnet-server"}, set(), ""),
    ("attacker", {"scanner-like"}, {"mqtt-client", "coap-client", "http-client", "telnet-client", "http-server"},
     "its tools' clients, and the web server the infected camera downloads the bot from"),
]
# Roles from what the capture shows, for any host:
# - a host whose Telnet server answered (TCP data from port 23) is a telnet-server
#   (an IP camera whose telnetd the attacks contacted);
# - the device the attacker infected (lateral_movement's attacker in labels.csv)
#   may show what it did from there: a telnet scan of the subnet (scanner-like)
#   and logins, CoAP, HTTP and MQTT requests.
INFECTED_MAY_SHOW = {"scanner-like", "telnet-client", "coap-client", "http-client", "mqtt-client"}


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                                     r.stderr.decode("utf-8", "replace")[-2000:]))
    return r.stdout


def spanwatch_binary():
    path = os.environ.get("SPANWATCH")
    if path:
        return path
    try:
        run(["cargo", "build", "--quiet", "-p", "spanwatch", "--bin", "spanwatch"], cwd=REPO)
    except FileNotFoundError:
        raise AssertionError("no cargo to build spanwatch: set SPANWATCH to the binary") from None
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "debug", "spanwatch")


SPANWATCH = None
CONFIG = None  # spanwatch's default config file, read by both sides
TMP = None


def setUpModule():
    global SPANWATCH, CONFIG, TMP
    SPANWATCH = spanwatch_binary()
    TMP = tempfile.mkdtemp(prefix="swtruth-")
    CONFIG = os.path.join(TMP, "spanwatch.toml")
    with open(CONFIG, "wb") as f:
        f.write(run([SPANWATCH, "config", "default"]))


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---- inventory -------------------------------------------------------------

def expected_roles(host, talks_telnet, infected):
    """(required, allowed) roles of a hosts.csv row."""
    kind = host["role"].split(":")[0].strip().lower()
    required, allowed = set(), set()
    for phrase, req, extra, _why in ROLE_MAP:
        if phrase in kind:
            required |= req
            allowed |= extra
    if not required:
        raise AssertionError("hosts.csv role %r has no mapping in ROLE_MAP" % host["role"])
    if host["ip"] in talks_telnet:
        required.add("telnet-server")
    if host["ip"] == infected:
        allowed |= INFECTED_MAY_SHOW
    return required, required | allowed


class IeeeRegistry:
    """Organisation names by MAC block from /usr/share/ieee-data (MA-L, MA-M,
    MA-S, IAB), the longest block first."""

    FILES = (("oui36.csv", 9), ("iab.csv", 9), ("mam.csv", 7), ("oui.csv", 6))

    def __init__(self):
        self.names = {}
        for name, digits in self.FILES:
            path = os.path.join(IEEE_DATA, name)
            if not os.path.exists(path):
                raise AssertionError("%s missing: install ieee-data (bash .ci/deps)" % path)
            for row in read_csv(path):
                self.names.setdefault((digits, row["Assignment"].upper()), set()).add(
                    " ".join(row["Organization Name"].split()))

    def vendors(self, mac):
        """The names the registry gives `mac`; empty for a locally
        administered or group address (first octet bits 1 and 0) or an
        unassigned block."""
        hexmac = mac.replace(":", "").upper()
        if int(hexmac[:2], 16) & 0b11:
            return set()
        for _name, digits in self.FILES:
            names = self.names.get((digits, hexmac[:digits]))
            if names:
                return names
        return set()


def senders(capture):
    """By tshark: the MACs that sent a frame, and the addresses that sent
    Telnet data (TCP payload from port 23)."""
    out = run(["tshark", "-n", "-r", capture, "-T", "fields", "-E", "separator=,", "-e", "eth.src", "-e", "ip.src",
               "-e", "tcp.srcport", "-e", "tcp.len"])
    macs, telnet = set(), set()
    for line in out.decode().splitlines():
        mac, ip, sport, length = (line.split(",") + ["", "", "", ""])[:4]
        macs.add(mac.lower())
        if sport == "23" and length not in ("", "0"):
            telnet.add(ip)
    return macs, telnet


def check_inventory(t, d):
    """Every host of `d`/hosts.csv that sent a frame found with its MAC and
    IP and roles, no other device, vendors from the IEEE registry."""
    capture = os.path.join(d, "capture.pcap")
    hosts = read_csv(os.path.join(d, "hosts.csv"))
    labels = read_csv(os.path.join(d, "labels.csv"))
    infected = next((lb["attacker_ip"] for lb in labels if lb["phase"] == "lateral_movement"), None)
    sent, talks_telnet = senders(capture)
    devices = {dev["mac"]: dev for dev in json.loads(run([SPANWATCH, "devices", "--json", capture]))}
    registry = IeeeRegistry()
    t.assertTrue(hosts, "no hosts in hosts.csv")
    for h in hosts:
        with t.subTest(host=h["name"]):
            dev = devices.get(h["mac"].lower())
            if h["mac"].lower() not in sent:
                continue  # it never sent a frame (the attacker of a benign run): nothing to find
            t.assertIsNotNone(dev, "%s (%s, %s) is not in the inventory" % (h["name"], h["mac"], h["ip"]))
            t.assertEqual([i["ip"] for i in dev["ips"]], [h["ip"]], "%s: addresses" % h["name"])
            t.assertEqual(dev["foreign_ips"], 0, "%s: sends from addresses not its own" % h["name"])
            required, allowed = expected_roles(h, talks_telnet, infected)
            roles = set(dev["roles"])
            t.assertEqual(required - roles, set(), "%s (%s): roles missing from %s" % (h["name"], h["role"], sorted(roles)))
            t.assertEqual(roles - allowed, set(), "%s (%s): unexpected roles" % (h["name"], h["role"]))
            vendors = registry.vendors(h["mac"])
            if vendors:
                t.assertIn(dev["vendor"], vendors, "%s %s: vendor" % (h["name"], h["mac"]))
            else:
                t.assertIsNone(dev["vendor"], "%s %s: vendor of an unregistered MAC" % (h["name"], h["mac"]))
    phantoms = sorted(set(devices) - {h["mac"].lower() for h in hosts})
    t.assertEqual(phantoms, [], "devices that are no host: %s" % [(m, devices[m]["ips"]) for m in phantoms])


# ---- features --------------------------------------------------------------

def epoch(rfc3339):
    t = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp())


def iso(secs):
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def spanwatch_windows(t, capture, window_secs):
    path = os.path.join(TMP, "windows.jsonl")
    run([SPANWATCH, "replay", "--no-progress", "--config", CONFIG, "--windows", path, capture])
    rows = {}
    with open(path) as f:
        for line in f:
            w = json.loads(line)
            start, end = epoch(w["start"]), epoch(w["end"])
            t.assertEqual((start % window_secs, end - start), (0, window_secs), "window %s" % w["start"])
            t.assertNotIn((w["device"], start), rows, "two windows of one device at one time")
            rows[(w["device"], start)] = w
    return rows


def check_features(t, d, attacks=True):
    """Every feature of features_tshark, every device, every window: the same
    value from spanwatch and from tshark."""
    capture = os.path.join(d, "capture.pcap")
    cfg = features_tshark.load_config(CONFIG)
    ours = spanwatch_windows(t, capture, cfg["window_secs"])
    theirs = {(r["device"], r["start"]): r for r in features_tshark.compute(capture, cfg)}
    t.assertTrue(theirs, "tshark saw no device traffic")
    diffs = []
    for key in sorted(set(ours) | set(theirs)):
        for f in features_tshark.FEATURES:
            a, b = ours.get(key, {}).get(f, 0), theirs.get(key, {}).get(f, 0)
            if a != b:
                diffs.append("%s window %s %s: spanwatch %s, tshark %s" % (key[0], iso(key[1]), f, a, b))
    t.assertEqual(diffs[:30], [], "%d differences in %s" % (len(diffs), capture))
    if attacks:
        silent = [f for f in KEY_FEATURES if not any(r[f] for r in theirs.values())]
        t.assertEqual(silent, [], "features never non-zero: the comparison would prove nothing about them")


class SharedSampleTests(unittest.TestCase):
    """../shared/lab-sample (an older lab: fixed subnet, local MACs) and the
    bundled samples."""

    def test_lab_sample_inventory(self):
        check_inventory(self, SHARED_SAMPLE)

    def test_lab_sample_features(self):
        check_features(self, SHARED_SAMPLE)

    def test_bundled_samples(self):
        for name, attacks in (("attack", True), ("benign", False)):
            with self.subTest(sample=name):
                check_inventory(self, os.path.join(SAMPLES, name))
                check_features(self, os.path.join(SAMPLES, name), attacks)


@unittest.skipUnless(IS_ROOT, "the lab needs root")
class LabRunTests(unittest.TestCase):
    """Two fresh lab runs (about four and three minutes)."""

    @classmethod
    def setUpClass(cls):
        run([sys.executable, LAB, "--install-only"], timeout=1500)
        cls.runs = {}
        for seed, duration, left_out in RUNS:
            plan = json.loads(run([sys.executable, LAB, "--plan-only", "--seed", str(seed), "--duration", "600",
                                   "--phases", "all"]))
            phases = ",".join(p["name"] for p in plan["phases"] if p["name"] not in left_out)
            out = os.path.join(TMP, "lab-%d" % seed)
            proc = subprocess.run([sys.executable, LAB, "--seed", str(seed), "--duration", str(duration),
                                   "--phases", phases, "--out", out], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=duration + 150)
            cls.runs[seed] = (out, proc)

    def assert_ran(self, proc):
        self.assertEqual(proc.returncode, 0, proc.stderr.decode("utf-8", "replace")[-2000:])

    def test_inventory(self):
        for seed, (out, proc) in self.runs.items():
            with self.subTest(seed=seed):
                self.assert_ran(proc)
                check_inventory(self, out)

    def test_features(self):
        for seed, (out, proc) in self.runs.items():
            with self.subTest(seed=seed):
                self.assert_ran(proc)
                check_features(self, out)

if __name__ == "__main__":
    unittest.main()
