#!/usr/bin/env bash
# Cross-compiles the Catch2 test suite for another architecture and runs it
# under qemu-user. Usage: .ci/cross-test.sh s390x|aarch64 [qemu -cpu model]
# The environment passes through to the tests (KVC_EXPECT_CRC32C_KERNEL).
set -euo pipefail
arch=$1
cpu=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Catch2 v2 is one portable header; copy it so the cross compiler does not see
# the host's /usr/include.
mkdir -p "$out/inc/catch2"
cp /usr/include/catch2/catch.hpp "$out/inc/catch2/"
srcs=$(sed -n 's/^  \(test_[a-z0-9_]*\.cpp\|main\.cpp\)$/\1/p' "$root/tests/CMakeLists.txt")
[ -n "$srcs" ] || { echo "no test sources found" >&2; exit 1; }
objs=()
pids=()
for s in $srcs; do
  "$arch-linux-gnu-g++" -std=c++17 -O2 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror \
    -DKVC_CATCH2_V2_MAIN -I"$root/include" -I"$out/inc" -c "$root/tests/$s" -o "$out/${s%.cpp}.o" &
  pids+=($!)
  objs+=("$out/${s%.cpp}.o")
done
# The C interface's implementation, which test_c_api.cpp calls (kvc::c).
"$arch-linux-gnu-g++" -std=c++17 -O2 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror \
  -I"$root/include" -c "$root/src/kvc_c.cpp" -o "$out/kvc_c.o" &
pids+=($!)
objs+=("$out/kvc_c.o")
for p in "${pids[@]}"; do wait "$p"; done
"$arch-linux-gnu-g++" -static -pthread -o "$out/kvc_tests" "${objs[@]}"
cd "$root/tests"
if [ -n "$cpu" ]; then
  "qemu-$arch" -cpu "$cpu" "$out/kvc_tests"
else
  "qemu-$arch" "$out/kvc_tests"
fi
