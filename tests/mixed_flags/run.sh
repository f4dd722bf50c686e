#!/usr/bin/env bash
# Mixed compiler flags in one program (issue: ODR safety). Builds probe.cpp
# four times, with no flags, with -msse4.2 (x86-64 only), with
# -DKVC_CRC32C_NO_HW and with -DKVC_CORE_ONLY, links them with main.cpp in
# both orders and runs each program; and a program whose only kvc unit is
# the core-only one (no -pthread: the core needs no thread library). On x86-64 it also checks the linked code: every function that
# contains a crc32 instruction must be one of kvc's CPU-checked kernels,
# never code a baseline caller reaches without the run-time CPU check.
#   run.sh CXX INCLUDE_DIR
set -euo pipefail
cxx=$1
inc=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-std=c++17 -O2 -Wall -Wextra -Werror -I"$inc" -I"$here")
sse42=()
[ "$(uname -m)" = x86_64 ] && sse42=(-msse4.2)
"$cxx" "${flags[@]}" -DKVC_PROBE=probe_default -c "$here/probe.cpp" -o "$work/default.o"
"$cxx" "${flags[@]}" "${sse42[@]}" -DKVC_PROBE=probe_sse42 -c "$here/probe.cpp" -o "$work/sse42.o"
"$cxx" "${flags[@]}" -DKVC_CRC32C_NO_HW -DKVC_PROBE=probe_portable -c "$here/probe.cpp" -o "$work/portable.o"
"$cxx" "${flags[@]}" -DKVC_CORE_ONLY -DKVC_PROBE=probe_core -c "$here/probe.cpp" -o "$work/core.o"
"$cxx" "${flags[@]}" -c "$here/main.cpp" -o "$work/main.o"
"$cxx" "${flags[@]}" -DKVC_CORE_ALONE -c "$here/main.cpp" -o "$work/main_core.o"
cd "$work"
"$cxx" -pthread main.o sse42.o default.o portable.o core.o -o forward
"$cxx" -pthread main.o core.o portable.o default.o sse42.o -o backward
"$cxx" main_core.o core.o -o core_alone
./forward
./backward
./core_alone
if [ "$(uname -m)" = x86_64 ] && command -v objdump >/dev/null; then
  for prog in forward backward; do
    # Functions (demangled) that contain a crc32 instruction.
    users=$(objdump -d -C --no-show-raw-insn "$prog" |
      awk '/^[0-9a-f]+ <.*>:$/ { fn = $0 } /\tcrc32[bwlq]? / { print fn }' | sort -u)
    bad=$(printf '%s\n' "$users" | grep -v -E 'crc32c_(hw_|avx512|x86_shift_k)' | grep -v '^$' || true)
    if [ -n "$bad" ]; then
      echo "FAIL $prog: crc32 instructions outside the CPU-checked kernels:" >&2
      printf '%s\n' "$bad" >&2
      exit 1
    fi
    [ -n "$users" ] || { echo "FAIL $prog: no crc32 instruction at all (the check would prove nothing)" >&2; exit 1; }
  done
  # The format core alone compiles no kernel at all.
  if objdump -d --no-show-raw-insn core_alone | grep -qE $'\tcrc32[bwlq]? '; then
    echo "FAIL core_alone: crc32 instructions in a program of core-only units" >&2
    exit 1
  fi
  echo "mixed flags: crc32 instructions only in the CPU-checked kernels, none in the core alone"
fi
