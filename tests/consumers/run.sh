#!/usr/bin/env bash
# Proves each way of consuming kvc: find_package after install (also after an
# install with no build: the header-only library), add_subdirectory,
# FetchContent from the local checkout, pkg-config, and the single header
# copied alone into a plain g++ build; and for C programs (kvc/kvc.h),
# linked by the C compiler: find_package (kvc::c), pkg-config (kvc-c) and
# the copied header pair with one C++ file that defines
# KVC_C_IMPLEMENTATION. Each consumer verifies a fixture.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fixture="$root/spec/fixtures/v2-tools-1.kv"
expect="ok v2 tokens=3"

check() {  # name binary
  local got
  got=$("$2" "$fixture")
  [ "$got" = "$expect" ] || { echo "consumer $1: got '$got'" >&2; exit 1; }
  echo "consumer $1: ok"
}

# Installed straight after a fresh configure, without a build: the headers,
# kvc.pc and the CMake package with kvc::kvc, no kvc::c.
cmake -S "$root" -B "$work/fresh" -DKVC_BUILD_TESTS=OFF -DKVC_BUILD_EXAMPLES=OFF >/dev/null
cmake --install "$work/fresh" --prefix "$work/headers" >/dev/null
test -f "$work/headers/include/kvc/kvc.hpp" && test -f "$work/headers/include/kvc/kvc.h"
test ! -e "$work/headers/include/kvc/parts"
[ -z "$(find "$work/headers" -name 'libkvc_c*' -o -name 'kvc-c.pc' -o -name 'kvcCTargets*')" ] ||
  { echo "consumer fresh-install: C library files installed without a build" >&2; exit 1; }
cmake -S "$root/tests/consumers/find_package" -B "$work/fph" -DCMAKE_PREFIX_PATH="$work/headers" >/dev/null
cmake --build "$work/fph" >/dev/null
check find_package-without-build "$work/fph/consumer"

# The prefix is chosen at install time, not at configure time: kvc.pc and the
# CMake package must not depend on the configured one.
cmake -S "$root" -B "$work/kvc-build" -DKVC_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/nonexistent/configured >/dev/null
cmake --build "$work/kvc-build" -j2 >/dev/null
cmake --install "$work/kvc-build" --prefix "$work/prefix" >/dev/null
test -x "$work/prefix/bin/kvc"
test -f "$work/prefix/share/pkgconfig/kvc.pc"
libdir=$(find "$work/prefix" -name libkvc_c.a -printf '%h\n')
test -f "$libdir/pkgconfig/kvc-c.pc"

cmake -S "$root/tests/consumers/find_package" -B "$work/fp" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/fp" >/dev/null
check find_package "$work/fp/consumer"

cmake -S "$root/tests/consumers/add_subdirectory" -B "$work/as" -DKVC_SOURCE_DIR="$root" >/dev/null
cmake --build "$work/as" >/dev/null
check add_subdirectory "$work/as/consumer"

cmake -S "$root/tests/consumers/fetchcontent" -B "$work/fc" -DKVC_SOURCE_DIR="$root" >/dev/null
cmake --build "$work/fc" >/dev/null
check fetchcontent "$work/fc/consumer"

cflags=$(PKG_CONFIG_PATH="$work/prefix/share/pkgconfig" pkg-config --cflags kvc)
cflags=${cflags% }  # pkg-config ends the line with a space
[ "$(cd "${cflags#-I}" && pwd -P)" = "$(cd "$work/prefix/include" && pwd -P)" ] ||
  { echo "consumer pkg-config: kvc.pc gives '$cflags', not $work/prefix/include" >&2; exit 1; }
g++ -std=c++17 $cflags "$root/tests/consumers/consumer.cpp" -o "$work/pc"
check pkg-config "$work/pc"

mkdir -p "$work/single/kvc"
cp "$root/include/kvc/kvc.hpp" "$work/single/kvc/"
g++ -std=c++17 -I"$work/single" "$root/tests/consumers/consumer.cpp" -o "$work/single/consumer"
check single-header "$work/single/consumer"

cflags_c=(-std=c99 -Wall -Wextra -Werror -pedantic)

cmake -S "$root/tests/consumers/find_package_c" -B "$work/fpc" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/fpc" --verbose >"$work/fpc.log"
# Linked by the C compiler (the project enables C only), with the C++ runtime kvc::c names.
cc_path=$(cd "$work/fpc" && cmake -LA -N . | sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p')
grep -q "^$cc_path .* -o consumer" "$work/fpc.log" ||
  { echo "consumer find_package-c: not linked by $cc_path" >&2; cat "$work/fpc.log" >&2; exit 1; }
check find_package-c "$work/fpc/consumer"

export PKG_CONFIG_PATH="$libdir/pkgconfig:$work/prefix/share/pkgconfig"
cc "${cflags_c[@]}" $(pkg-config --cflags kvc-c) "$root/tests/consumers/consumer.c" \
  $(pkg-config --libs kvc-c) -o "$work/pcc"
check pkg-config-c "$work/pcc"

mkdir -p "$work/pair/kvc"
cp "$root/include/kvc/kvc.h" "$root/include/kvc/kvc.hpp" "$work/pair/kvc/"
printf '#define KVC_C_IMPLEMENTATION\n#include <kvc/kvc.hpp>\n' >"$work/pair/kvc_c.cpp"
g++ -std=c++17 -I"$work/pair" -c "$work/pair/kvc_c.cpp" -o "$work/pair/kvc_c.o"
cc "${cflags_c[@]}" -I"$work/pair" -c "$root/tests/consumers/consumer.c" -o "$work/pair/consumer.o"
# The README's recipe: the C compiler links, naming the C++ runtime.
cc "$work/pair/consumer.o" "$work/pair/kvc_c.o" -lstdc++ -lm -o "$work/pair/consumer"
check header-pair-c "$work/pair/consumer"
