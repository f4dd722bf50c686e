#!/usr/bin/env python3
"""Runs a kvc benchmark binary (or reads its JSON) and prints markdown tables of
median throughput, with ratios between named rows.

Benchmarks are named "<row>/<size>". Each --ratio A:B adds a line "A / B"
per size; --best PREFIX:B adds "best PREFIX* / B".

  bench_table.py --binary build/bench/tests/bench/kvc_bench_crc32c \\
      --best kvc/:isal/crc32_iscsi
  bench_table.py --binary build/bench/tests/bench/kvc_bench_io \\
      --ratio kvc/verify_full:plain/read --ratio kvc/write_v2:kvc/write_v1
GB/s = 1e9 bytes per second.
"""
import argparse
import json
import subprocess
import sys


def load(args, extra):
    if args.json:
        with open(args.json) as f:
            return json.load(f)
    cmd = [args.binary, f"--benchmark_repetitions={args.repetitions}",
           "--benchmark_report_aggregates_only=true", "--benchmark_format=json"] + extra
    print("command: " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    data = json.loads(out)
    if args.save_json:
        with open(args.save_json, "w") as f:
            json.dump(data, f, indent=1)
    return data


def fmt_size(n):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--json")
    ap.add_argument("--save-json")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--ratio", action="append", default=[], help="A:B, rows A and B")
    ap.add_argument("--best", action="append", default=[], help="PREFIX:B, best row starting with PREFIX vs B")
    args, extra = ap.parse_known_args()
    data = load(args, extra)

    table = {}  # row -> size -> GB/s (median)
    for b in data["benchmarks"]:
        if b.get("aggregate_name", "median") != "median" or b.get("error_occurred"):
            continue
        row, size = b.get("run_name", b["name"]).split("/real_time")[0].rsplit("/", 1)
        table.setdefault(row, {})[int(size)] = b["bytes_per_second"] / 1e9

    sizes = sorted({s for v in table.values() for s in v})
    ctx = data.get("context", {})
    print(f"Median of {args.repetitions} repetitions, GB/s (1e9 B/s); {ctx.get('num_cpus', '?')} CPUs "
          f"@ {ctx.get('mhz_per_cpu', '?')} MHz (nominal)\n")
    print("| | " + " | ".join(fmt_size(s) for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for row in table:
        print(f"| {row} | " + " | ".join(f"{table[row][s]:.2f}" if s in table[row] else "-" for s in sizes) + " |")
    for spec in args.ratio:
        a, b = spec.split(":")
        cells = [f"{table[a][s] / table[b][s]:.2f}x" if s in table.get(a, {}) and s in table.get(b, {}) else "-"
                 for s in sizes]
        print(f"| {a} / {b} | " + " | ".join(cells) + " |")
    for spec in args.best:
        prefix, b = spec.split(":")
        cells = []
        for s in sizes:
            rows = [(table[r][s], r) for r in table if r.startswith(prefix) and s in table[r]]
            if not rows or s not in table.get(b, {}):
                cells.append("-")
                continue
            value, row = max(rows)
            cells.append(f"{value / table[b][s]:.2f}x ({row[len(prefix):]})")
        print(f"| best {prefix}* / {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
