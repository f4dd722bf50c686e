#!/usr/bin/env bash
# What kvc.hpp promises about itself, checked with the compiler:
#   1. it is the amalgamation of include/kvc/parts/ (cmake/amalgamate.cmake);
#   2. the only KVC_ macros it leaves defined are its public ones;
#   3. with KVC_CORE_ONLY it includes no platform header and no intrinsics;
#   4. a unit may include it with KVC_CORE_ONLY, then again without: the
#      second include adds the rest.
#   checks.sh CXX ROOT [EXTRA_FLAGS...]
set -euo pipefail
cxx=$1
root=$2
shift 2
extra=("$@")
inc=("-I$root/include")
fail() { echo "FAIL header_checks: $*" >&2; exit 1; }

# 1.
"${CMAKE:-cmake}" -DCHECK=ON -P "$root/cmake/amalgamate.cmake" >/dev/null || fail "kvc.hpp is not generated from its parts"

# 2. Every KVC_ macro left after the header, for each configuration; with
# KVC_C_IMPLEMENTATION, kvc.h's own (public) macros too.
kvc_macros() { "$cxx" -std=c++17 "$@" "${extra[@]}" "${inc[@]}" -dM -E -x c++ - | sed -n 's/^#define \(KVC_[A-Za-z0-9_]*\).*/\1/p'; }
public='^KVC_(VERSION_(MAJOR|MINOR|PATCH|STRING|NUMBER)|ABI_NAMESPACE|KVC_HPP_CORE|KVC_HPP_FULL|(HEADER|LIMIT|DSV4|MODEL)_FIELDS)$'
c_public=$(printf '#include <kvc/kvc.h>\n' | kvc_macros)
for config in "" "-DKVC_CORE_ONLY" "-DKVC_CRC32C_NO_HW" "-DKVC_C_IMPLEMENTATION"; do
  left=$(printf '#include <kvc/kvc.hpp>\n' | kvc_macros ${config:+"$config"} | grep -v -E "$public" |
    grep -v -x -F -e KVC_CORE_ONLY -e KVC_CRC32C_NO_HW -e KVC_C_IMPLEMENTATION $(printf -- '-e %s ' $c_public) || true)
  [ -z "$left" ] || fail "kvc.hpp ${config:-(no configuration)} leaves internal macros defined: $(echo $left)"
done

# 3. The headers a core-only unit includes, at any depth.
forbidden='(^|/)(signal|setjmp|dirent|pthread|unistd|fcntl|windows|immintrin|intrin|cpuid|arm_neon|arm_acle)\.h$|/sys/(mman|stat|file|ioctl|auxv)\.h$'
included=$(printf '#define KVC_CORE_ONLY\n#include <kvc/kvc.hpp>\n' |
  "$cxx" -std=c++17 "${extra[@]}" "${inc[@]}" -H -fsyntax-only -x c++ - 2>&1 >/dev/null | sed -n 's/^\.* //p')
bad=$(printf '%s\n' "$included" | grep -E "$forbidden" || true)
[ -z "$bad" ] || fail "a KVC_CORE_ONLY unit includes platform headers: $(echo $bad)"
printf '%s\n' "$included" | grep -q 'kvc/kvc.hpp' || fail "-H listed nothing (the check would prove nothing)"

# 4.
cat >"${TMPDIR:-/tmp}/kvc_two_stage.cpp" <<'CPP'
#define KVC_CORE_ONLY
#include <kvc/kvc.hpp>
#undef KVC_CORE_ONLY
#include <kvc/kvc.hpp>
int main() {
  kvc::file_info info;
  return kvc::verify_file("/nonexistent.kv", info).code == kvc::errc::io_error ? 0 : 1;
}
CPP
"$cxx" -std=c++17 -Wall -Wextra -Werror "${extra[@]}" "${inc[@]}" -fsyntax-only "${TMPDIR:-/tmp}/kvc_two_stage.cpp" ||
  fail "including kvc.hpp with KVC_CORE_ONLY, then without, does not give the whole API"
rm -f "${TMPDIR:-/tmp}/kvc_two_stage.cpp"
echo "header checks: amalgamation current, no internal macro left, core-only unit free of platform headers, two-stage include"
