#!/usr/bin/env bash
# Compile time of a unit that uses kvc, against a unit with <vector> and
# <string> (issue "one header from parts"): each unit compiled RUNS times,
# the units interleaved; prints the median and its ratio to the base unit.
#   tests/bench/compile_time.sh [RUNS]      (default 5; CXX overrides g++)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=${1:-5}
cxx=${CXX:-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/base.cpp" <<'CPP'
#include <string>
#include <vector>
int main(int argc, char**) {
  std::vector<std::string> v(static_cast<unsigned>(argc), "x");
  return static_cast<int>(v.size() + v[0].size());
}
CPP
# crc32c and decode_header: the format core's codec (KVC_CORE_ONLY or not).
codec_body='int main(int argc, char** argv) {
  std::string_view s(argv[0]);
  auto h = kvc::decode_header(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  return static_cast<int>(kvc::crc32c(s.data(), s.size())) + (h ? 1 : 0) + argc;
}'
printf '#define KVC_CORE_ONLY\n#include <kvc/kvc.hpp>\n%s\n' "$codec_body" >"$work/core_codec.cpp"
printf '#include <kvc/kvc.hpp>\n%s\n' "$codec_body" >"$work/full_codec.cpp"
cat >"$work/core_read.cpp" <<'CPP'
#define KVC_CORE_ONLY
#include <kvc/kvc.hpp>
int main(int argc, char** argv) {
  std::string_view s(argv[0]);
  auto h = kvc::decode_header(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  kvc::memory_stream m(s.data(), s.size());
  kvc::file_info info;
  const kvc::error e = kvc::verify(m, info);
  return static_cast<int>(kvc::crc32c(s.data(), s.size())) + (h ? 1 : 0) + argc + (e ? 1 : 0);
}
CPP

units=(base core_codec core_read full_codec)
declare -A times
for ((r = 0; r < runs; ++r)); do
  for u in "${units[@]}"; do
    t0=$(date +%s%N)
    "$cxx" -std=c++17 -O2 -I"$root/include" -c "$work/$u.cpp" -o "$work/$u.o"
    t1=$(date +%s%N)
    times[$u]+="$(( (t1 - t0) / 1000000 )) "
  done
done
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(median "${times[base]}")
printf '%s -std=c++17 -O2, %d runs each, median ms and ratio to base\n' "$("$cxx" --version | head -1)" "$runs"
for u in "${units[@]}"; do
  m=$(median "${times[$u]}")
  printf '%-12s %6d ms  %5.2fx   (runs: %s)\n' "$u" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN {print a / b}')" "${times[$u]}"
done
