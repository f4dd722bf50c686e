#!/usr/bin/env bash
# Whole-process pairs for the goals of the "verification at memory speed"
# issue, measured with hyperfine. Each round runs one pair in one hyperfine
# call (the order alternating between rounds) and takes the ratio of the
# mean times; the script prints the median of the rounds' ratios.
#   tests/bench/whole_process.sh [BUILD_DIR]     (default build/rel)
# Environment: ROUNDS (default 5), RUNS per command and round (default 3),
# KVC_BENCH_DIR for the scratch files (default /tmp; needs ~1.6 GiB),
# KVC_SAVE_DIR for the saved files (default KVC_BENCH_DIR; a tmpfs such as
# /dev/shm measures the copy into the page cache without the disk's noise),
# ONLY, an extended regex: run only the pairs whose name matches.
set -euo pipefail
build=${1:-build/rel}
rounds=${ROUNDS:-5}
runs=${RUNS:-3}
kvc=$build/examples/kvc
tool=$build/tests/bench/kvc_bench_tool
store=$build/tests/bench/kvc_bench_store
dir=$(mktemp -d "${KVC_BENCH_DIR:-/tmp}/kvc-whole-XXXXXX")
save_dir=$(mktemp -d "${KVC_SAVE_DIR:-$dir}/kvc-save-XXXXXX")
trap 'rm -rf "$dir" "$save_dir"' EXIT
mkdir "$dir/small"
"$tool" save "$dir/big.kv" 1024 v2
"$tool" small "$dir/small" 10000
mkdir "$dir/headers"
"$tool" small "$dir/headers" 5000
head -c 256M "$dir/big.kv" > "$dir/sha.bin"
grep -m1 "model name" /proc/cpuinfo
echo "nproc $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"

# pair NAME A B [PREPARE]: prints the median over rounds of time(B) / time(A),
# i.e. A's throughput relative to B's (above 1: A is faster). PREPARE runs
# untimed before every run.
pair() {
  local name=$1 a=$2 b=$3 prepare=${4:-true} ratios=()
  [[ $name =~ ${ONLY:-.} ]] || return 0
  for r in $(seq "$rounds"); do
    local first=$a second=$b
    if (( r % 2 == 0 )); then first=$b; second=$a; fi
    hyperfine --style none --warmup 1 --runs "$runs" --prepare "$prepare" --export-json "$dir/h.json" "$first" "$second" > /dev/null
    ratios+=("$(python3 - "$dir/h.json" "$a" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
t = {x["command"]: x["mean"] for x in res}
a = t.pop(sys.argv[2]); b = list(t.values())[0]
print(f"{b / a:.3f}")
PY
)")
  done
  python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f'{sys.argv[1]}: median {statistics.median(r):.2f}x  rounds {r}')" "$name" "${ratios[@]}"
}

# One file: its payload CRC on every core (the tool's default).
pair "verify --level full 1 GiB (page cache) vs cat" "$kvc verify --level full --quiet $dir/big.kv" "cat $dir/big.kv"
pair "verify --level full 1 GiB -j 1 (one thread) vs cat" "$kvc verify -j 1 --level full --quiet $dir/big.kv" "cat $dir/big.kv"
# Cold: the file evicted from the page cache (POSIX_FADV_DONTNEED) before every run.
evict="python3 -c 'import os; f=os.open(\"$dir/big.kv\", os.O_RDONLY); os.posix_fadvise(f, 0, 0, os.POSIX_FADV_DONTNEED)'"
pair "verify --level full 1 GiB, cold cache, vs cat" "$kvc verify --level full --quiet $dir/big.kv" "cat $dir/big.kv" "$evict"
# A header scan of 5,000 files against one written by hand (open, read, close).
pair "verify --level header 5,000 files vs a hand-written scan" "$kvc verify --level header --quiet $dir/headers" "$store scan $dir/headers"
pair "verify --level full 10,000 small files vs cat DIR/*" "$kvc verify --level full --quiet $dir/small" "sh -c 'cat $dir/small/* > /dev/null'"
pair "kvc::sha1 256 MiB vs sha1sum" "$tool sha1 $dir/sha.bin" "sha1sum $dir/sha.bin"
# Saving: the time ratio v2 / v1 is 1 / this throughput ratio. Each save
# makes a new file, as an engine's save of a new prompt does: the previous
# run's file is removed untimed.
pair "save 1 GiB v2 (CRC overlapped, 2 threads) vs v1" "$tool save $save_dir/s.kv 1024 v2 2" "$tool save $save_dir/s.kv 1024 v1" "rm -f $save_dir/s.kv"
pair "save 1 GiB v2 (serial CRC) vs v1" "$tool save $save_dir/s.kv 1024 v2 1" "$tool save $save_dir/s.kv 1024 v1" "rm -f $save_dir/s.kv"
