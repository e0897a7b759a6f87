#!/usr/bin/env python3
"""Reads a spanwatch Parquet dataset back with two readers that share no code
with spanwatch (DuckDB and pyarrow) and prints, as JSON on stdout, what the
Rust tests in dataset_extract.rs and dataset_live.rs check.

usage: dataset_check.py DIR [--labels labels.csv --hosts hosts.csv]
                            [--key KEYFILE --macs M,M,... --ips I,I,...]

For each table (windows, devices): the row count by DuckDB and by pyarrow,
the columns, the Hive partition values, the files (each opened on its own by
pyarrow), every string value decompressed (list items included), and for
windows every row keyed by device and start. With --labels and --hosts, the
labels join is checked against labels.csv and hosts.csv. With --key, the
pseudonyms of the given MACs and IPs, computed here with the blake3 package.
"""

import argparse
import csv
import datetime
import decimal
import ipaddress
import json
import os

import blake3
import duckdb
import pyarrow.dataset as pads
import pyarrow.parquet as pq

KEY_CONTEXT = "spanwatch 2025-06 dataset pseudonyms v1"
PSEUDONYM_BYTES = 12


def iso(ts):
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def strings_of(value, out):
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            strings_of(v, out)


def table(root, name):
    directory = os.path.join(root, name)
    if not os.path.isdir(directory):
        return None
    glob = os.path.join(directory, "**", "*.parquet")
    con = duckdb.connect()
    source = f"read_parquet('{glob}', hive_partitioning = true)"
    duck_rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    duck_columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    partitions = con.execute(
        f"SELECT DISTINCT sensor, CAST(date AS VARCHAR) FROM {source} ORDER BY 1, 2"
    ).fetchall()
    dataset = pads.dataset(directory, format="parquet", partitioning="hive")
    files = []
    strings = set()
    for path in sorted(dataset.files):
        meta = pq.read_metadata(path)
        one = pq.read_table(path)
        files.append(
            {
                "path": os.path.relpath(path, root),
                "rows": meta.num_rows,
                "row_groups": meta.num_row_groups,
                "columns": one.column_names,
            }
        )
        for column in one.columns:
            for value in column.to_pylist():
                strings_of(value, strings)
    whole = dataset.to_table()
    report = {
        "duckdb_rows": duck_rows,
        "pyarrow_rows": whole.num_rows,
        "duckdb_columns": duck_columns,
        "partitions": [list(p) for p in partitions],
        "files": files,
        "strings": sorted(strings),
    }
    if name == "windows":
        rows = whole.to_pylist()
        features = [c for c in whole.column_names if c not in ("device", "start", "end", "phase", "role", "sensor", "date")]
        report["rows"] = [
            {
                "device": r["device"],
                "start": iso(r["start"]),
                "end": iso(r["end"]),
                "phase": r["phase"],
                "role": r["role"],
                "values": {f: r[f] for f in features},
            }
            for r in rows
        ]
    return report


def micros(text):
    return int(decimal.Decimal(text) * 1_000_000)


def check_labels(windows, labels_path, hosts_path):
    """Every row against labels.csv and hosts.csv; the problems found, and
    per phase the windows of its attacker labelled with it."""
    with open(hosts_path, newline="") as f:
        ip_of_mac = {r["mac"]: ipaddress.ip_address(r["ip"]) for r in csv.DictReader(f)}
    with open(labels_path, newline="") as f:
        phases = list(csv.DictReader(f))
    for p in phases:
        p["start"] = micros(p["start_epoch"])
        p["end"] = micros(p["end_epoch"])
        p["targets"] = [
            ipaddress.ip_network(t if "/" in t else t + "/32", strict=False)
            for t in p["target_ips"].split(";")
            if t
        ]
        p["attacker"] = ipaddress.ip_address(p["attacker_ip"]) if p["attacker_ip"] else None
    by_name = {p["phase"]: p for p in phases}
    problems = []
    attacker_windows = {p["phase"]: 0 for p in phases if p["attacker"]}

    def parse(t):
        return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)

    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    for r in windows["rows"]:
        start = (parse(r["start"]) - epoch) // datetime.timedelta(microseconds=1)
        end = (parse(r["end"]) - epoch) // datetime.timedelta(microseconds=1)
        overlapping = [p["phase"] for p in phases if start <= p["end"] and p["start"] < end]
        ip = ip_of_mac.get(r["device"])
        where = f"{r['device']} {r['start']}"
        if not overlapping:
            if r["phase"] is not None or r["role"] is not None:
                problems.append(f"{where}: overlaps no phase but is labelled {r['phase']}/{r['role']}")
            continue
        if r["phase"] not in overlapping:
            problems.append(f"{where}: phase {r['phase']} is not one it overlaps {overlapping}")
            continue
        p = by_name[r["phase"]]
        is_attacker = ip is not None and ip == p["attacker"]
        is_target = ip is not None and any(ip in t for t in p["targets"])
        want = "attacker" if is_attacker else "target" if is_target else None
        if r["role"] != want:
            problems.append(f"{where}: role {r['role']} in {r['phase']}, hosts.csv and labels.csv say {want}")
        if r["role"] == "attacker":
            attacker_windows[r["phase"]] += 1
    return {"problems": problems, "attacker_windows": attacker_windows}


def pseudonyms(key_file, macs, ips):
    with open(key_file, "rb") as f:
        key = blake3.blake3(f.read(), derive_key_context=KEY_CONTEXT).digest()

    def hashed(prefix, tag, value):
        return prefix + blake3.blake3(bytes([tag]) + value, key=key).digest()[:PSEUDONYM_BYTES].hex()

    out = {}
    for m in macs:
        out[m] = hashed("mac-", 1, bytes(int(b, 16) for b in m.split(":")))
    for i in ips:
        out[i] = hashed("ip-", 2, ipaddress.ip_address(i).packed)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--labels")
    ap.add_argument("--hosts")
    ap.add_argument("--key")
    ap.add_argument("--macs", default="")
    ap.add_argument("--ips", default="")
    a = ap.parse_args()
    report = {"windows": table(a.dir, "windows"), "devices": table(a.dir, "devices")}
    if a.labels:
        report["labels"] = check_labels(report["windows"], a.labels, a.hosts)
    if a.key:
        report["pseudonyms"] = pseudonyms(
            a.key, [m for m in a.macs.split(",") if m], [i for i in a.ips.split(",") if i]
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
