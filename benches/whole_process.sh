#!/usr/bin/env bash
# Whole-process benchmark: spanwatch against ndpiReader (nDPI) and tcpdump,
# each reading the same generated capture from disk, timed by GNU time as a
# user would run them, in alternating rounds within one sitting (so that
# machine load drifts over all tools alike), then reported as medians.
#
# Captures (written by `spanwatch synth`, deterministic):
#   mix    the project's IoT mix: MQTT, CoAP, HTTP and Telnet devices over
#          full TCP sessions (--packets 1000000 --seed 7);
#   flood  a SYN flood from spoofed sources, one new source per packet
#          (--mode syn-flood, same size and seed).
# Tools, in this order in every round:
#   spanwatch    `spanwatch replay` with default settings (parsers, rules,
#                devices, model; 2 threads on a machine with 2 cores or more);
#   spanwatch-t1 the same with --threads 1;
#   spanwatch-t3 the same with --threads 3 (a parser thread beside the
#                application stage's: three threads, whatever the cores);
#   ndpiReader   `ndpiReader -i FILE -q` (reads, dissects and classifies every
#                flow; it stops dissecting a flow once it is classified);
#   tcpdump      `tcpdump -r FILE -w /dev/null` (reading and writing only:
#                the floor of any tool that reads a pcap).
# Every run's output goes to /dev/null; each run is bounded by `timeout`.
#
# Usage: benches/whole_process.sh [ROUNDS]   (default 5)
# Environment: SPANWATCH (binary, default target/release/spanwatch),
#   WORK (directory for the captures and raw timings, default a new one under
#   /tmp), PACKETS (default 1000000), SEED (default 7), RUN_TIMEOUT_SECS
#   (default 600). Needs GNU time (/usr/bin/time), ndpiReader (Debian
#   libndpi-bin), tcpdump and capinfos (wireshark-common, with tshark): see
#   .ci/packages.
#
# Output: per capture and tool the median wall time, CPU time (user +
# system), peak RSS and packets per second, and the ratios of wall time, CPU
# time and packets/s to ndpiReader's (on a machine shared with other work the
# CPU ratio is the steadier one); raw timings are kept in WORK/runs.tsv.
set -euo pipefail

rounds="${1:-5}"
root="$(cd "$(dirname "$0")/.." && pwd)"
spanwatch="${SPANWATCH:-$root/target/release/spanwatch}"
packets="${PACKETS:-1000000}"
seed="${SEED:-7}"
limit="${RUN_TIMEOUT_SECS:-600}"
work="${WORK:-$(mktemp -d /tmp/spanwatch-bench.XXXXXX)}"

for tool in /usr/bin/time ndpiReader tcpdump capinfos timeout python3; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: run 'bash .ci/deps' (as root)" >&2
    exit 1
  }
done
[ -x "$spanwatch" ] || {
  echo "no spanwatch binary at $spanwatch: cargo build --release (or set SPANWATCH)" >&2
  exit 1
}
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || {
  echo "ROUNDS must be a positive integer, got '$rounds'" >&2
  exit 1
}
mkdir -p "$work"

declare -A capture=([mix]="$work/mix.pcap" [flood]="$work/flood.pcap")
[ -s "${capture[mix]}" ] ||
  "$spanwatch" synth --out "${capture[mix]}" --packets "$packets" --seed "$seed" >/dev/null
[ -s "${capture[flood]}" ] ||
  "$spanwatch" synth --out "${capture[flood]}" --packets "$packets" --seed "$seed" \
    --mode syn-flood >/dev/null

# One timed run: appends "capture tool round wall_s user_s sys_s maxrss_kib".
runs="$work/runs.tsv"
printf 'capture\ttool\tround\twall_s\tuser_s\tsys_s\tmaxrss_kib\n' >"$runs"
timed() {
  local name="$1" tool="$2" round="$3"
  shift 3
  local report="$work/time.txt"
  if ! /usr/bin/time -v -o "$report" timeout "$limit" "$@" >/dev/null 2>&1; then
    echo "$tool on $name failed or ran over ${limit}s: $*" >&2
    exit 1
  fi
  python3 - "$report" "$name" "$tool" "$round" >>"$runs" <<'EOF'
import sys
fields = {}
for line in open(sys.argv[1]):
    key, _, value = line.strip().rpartition(": ")
    fields[key] = value
wall = 0.0
for part in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"):
    wall = wall * 60 + float(part)
print("\t".join(sys.argv[2:5] + [f"{wall:.3f}", fields["User time (seconds)"],
      fields["System time (seconds)"], fields["Maximum resident set size (kbytes)"]]))
EOF
}

for round in $(seq 1 "$rounds"); do
  for name in mix flood; do
    file="${capture[$name]}"
    timed "$name" spanwatch "$round" "$spanwatch" replay --no-progress "$file"
    timed "$name" spanwatch-t1 "$round" "$spanwatch" replay --no-progress --threads 1 "$file"
    timed "$name" spanwatch-t3 "$round" "$spanwatch" replay --no-progress --threads 3 "$file"
    timed "$name" ndpiReader "$round" ndpiReader -i "$file" -q
    timed "$name" tcpdump "$round" tcpdump -r "$file" -w /dev/null
  done
  echo "round $round of $rounds done" >&2
done

mix_packets="$(capinfos -M -c -T -r "${capture[mix]}" | cut -f2)"
flood_packets="$(capinfos -M -c -T -r "${capture[flood]}" | cut -f2)"
echo "captures: mix $mix_packets packets, flood $flood_packets packets; $rounds rounds; $(nproc) cores; raw timings in $runs"
python3 - "$runs" "$mix_packets" "$flood_packets" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
packets = {"mix": int(sys.argv[2]), "flood": int(sys.argv[3])}
tools = ["spanwatch", "spanwatch-t1", "spanwatch-t3", "ndpiReader", "tcpdump"]
print(f"{'capture':<7} {'tool':<13} {'wall s':>7} {'cpu s':>7} {'RSS MiB':>8} "
      f"{'packets/s':>10} {'wall/nDPI':>9} {'cpu/nDPI':>9} {'pps/nDPI':>9}")
for name in ("mix", "flood"):
    med = {}
    for tool in tools:
        runs = [r for r in rows if r["capture"] == name and r["tool"] == tool]
        med[tool] = (
            statistics.median(float(r["wall_s"]) for r in runs),
            statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in runs),
            statistics.median(int(r["maxrss_kib"]) for r in runs) / 1024,
        )
    ndpi_wall, ndpi_cpu, _ = med["ndpiReader"]
    for tool in tools:
        wall, cpu, rss = med[tool]
        pps = packets[name] / wall
        print(f"{name:<7} {tool:<13} {wall:>7.2f} {cpu:>7.2f} {rss:>8.1f} "
              f"{pps:>10.0f} {wall / ndpi_wall:>8.3f}x {cpu / ndpi_cpu:>8.3f}x "
              f"{ndpi_wall / wall:>8.2f}x")
EOF
