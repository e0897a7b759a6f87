#!/usr/bin/env python3
"""Rebuild registry.txt, spanwatch's vendor table, from the IEEE Registration
Authority's CSV listings (MA-L, MA-M, MA-S and the legacy IAB).

Inputs are the CSV files of Debian's ieee-data package (the default) or the
same files downloaded from the IEEE, given as paths. Each file has the columns
Registry,Assignment,Organization Name,Organization Address; the Registry
column says which block size a row assigns. Python 3 standard library only.

    python3 refresh.py                                   # /usr/share/ieee-data
    python3 refresh.py --date 2025-01-31 oui.csv mam.csv oui36.csv iab.csv
"""

import argparse
import csv
import datetime
import os
import subprocess
import sys

DEBIAN_DIR = "/usr/share/ieee-data"
DEBIAN_FILES = ["oui.csv", "mam.csv", "oui36.csv", "iab.csv"]
OUT_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "registry.txt")

# Registry name -> hex digits of its prefix (24, 28 and 36 bits).
PREFIX_DIGITS = {"MA-L": 6, "MA-M": 7, "MA-S": 9, "IAB": 9}
COLUMNS = ("Registry", "Assignment", "Organization Name")

# First-octet bits (IEEE Std 802-2014, clause 8): I/G (group) and U/L (local).
# A MAC address with either bit set is never looked up, so a prefix with
# either bit set (a few pre-1990 assignments such as 02608C) is left out.
GROUP_OR_LOCAL_BITS = 0x03


class InputError(Exception):
    pass


def read_rows(path):
    """(registry, prefix, name, line) of every assignment in one CSV file."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header[: len(COLUMNS)]) != COLUMNS:
            raise InputError(f"{path}: header is {header}, expected it to start with {list(COLUMNS)}")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) < len(COLUMNS):
                raise InputError(f"{path}:{line}: {len(row)} columns, expected at least {len(COLUMNS)}")
            registry, prefix, name = row[0].strip(), row[1].strip().upper(), " ".join(row[2].split())
            digits = PREFIX_DIGITS.get(registry)
            if digits is None:
                raise InputError(f"{path}:{line}: unknown registry {registry!r} (known: {', '.join(PREFIX_DIGITS)})")
            if len(prefix) != digits or any(c not in "0123456789ABCDEF" for c in prefix):
                raise InputError(f"{path}:{line}: {registry} assignment {prefix!r} is not {digits} hex digits")
            if not name:
                raise InputError(f"{path}:{line}: {registry} assignment {prefix} has no organisation name")
            yield registry, prefix, name, line


def registry_date(paths, date_arg):
    if date_arg:
        return datetime.date.fromisoformat(date_arg).isoformat()
    stamp = os.path.join(os.path.dirname(os.path.abspath(paths[0])), ".lastupdate")
    try:
        with open(stamp) as f:
            seconds = int(f.read().strip())
    except (OSError, ValueError) as e:
        raise InputError(f"no --date given and no readable {stamp} ({e}): give --date YYYY-MM-DD, the day the CSVs were published")
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).date().isoformat()


def source_of(paths, source_arg):
    if source_arg:
        return source_arg
    if all(os.path.dirname(os.path.abspath(p)) == DEBIAN_DIR for p in paths):
        try:
            version = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", "ieee-data"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            return f"Debian package ieee-data {version}"
        except (OSError, subprocess.CalledProcessError):
            return "Debian package ieee-data"
    return "IEEE Registration Authority CSV files"


def build(paths, date, source):
    table = {}
    counts = {r: 0 for r in PREFIX_DIGITS}
    for path in paths:
        for registry, prefix, name, line in read_rows(path):
            if int(prefix[:2], 16) & GROUP_OR_LOCAL_BITS:
                print(f"{path}:{line}: left out {registry} {prefix} ({name}): group or local bit set", file=sys.stderr)
                continue
            if prefix in table:
                print(f"{path}:{line}: left out repeated {registry} {prefix} ({name}); kept {table[prefix][1]}", file=sys.stderr)
                continue
            table[prefix] = (registry, name)
            counts[registry] += 1
    missing = [r for r, n in counts.items() if n == 0]
    if missing:
        print(f"warning: no {', '.join(missing)} assignments in the inputs", file=sys.stderr)
    entries = ", ".join(f"{r} {n}" for r, n in counts.items())
    header = [
        "# spanwatch vendor table: MAC address block assignments of the IEEE Registration Authority.",
        f"# Registry date: {date} ({source}).",
        "# Licence: the IEEE asserts no copyright in its public listing and does not restrict its distribution (see README.md).",
        f"# Entries: {entries}; prefixes with the group or local bit set and repeated assignments are left out.",
        "# Format: one assignment a line, sorted: prefix in hex (6 digits MA-L, 7 MA-M, 9 MA-S or IAB), a space, the organisation.",
        "# Rebuilt by refresh.py in this folder; do not edit by hand.",
    ]
    body = [f"{prefix} {table[prefix][1]}" for prefix in sorted(table)]
    return "\n".join(header + body) + "\n", counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="*", help=f"IEEE CSV files (default: {', '.join(DEBIAN_FILES)} in {DEBIAN_DIR})")
    parser.add_argument("--date", help="publication day of the CSVs, YYYY-MM-DD (default: ieee-data's .lastupdate)")
    parser.add_argument("--source", help="where the CSVs came from, for the header")
    parser.add_argument("--out", default=OUT_DEFAULT, help="output file (default: registry.txt beside this script)")
    args = parser.parse_args()
    paths = args.csv or [os.path.join(DEBIAN_DIR, f) for f in DEBIAN_FILES]
    try:
        text, counts = build(paths, registry_date(paths, args.date), source_of(paths, args.source))
    except (OSError, InputError, ValueError) as e:
        print(f"refresh.py: {e}", file=sys.stderr)
        return 1
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(text.encode())} bytes, {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
