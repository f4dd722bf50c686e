# Cross-compiles kvc for Windows x86-64 with MinGW-w64 (Debian:
# g++-mingw-w64-x86-64) and runs the tests under Wine (Debian: wine64).
#
#   cmake -S . -B build/mingw -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-x86_64.cmake
#
# The -posix flavour of the compiler: GCC 12's win32 thread model has no
# std::thread, which the tests use. Executables are linked statically, so they
# run without libstdc++, libgcc and winpthread DLLs beside them.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(KVC_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${KVC_MINGW_PREFIX}-gcc-posix)
set(CMAKE_CXX_COMPILER ${KVC_MINGW_PREFIX}-g++-posix)
set(CMAKE_RC_COMPILER ${KVC_MINGW_PREFIX}-windres)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# Libraries and headers come from the MinGW sysroot only, never from the
# host's /usr. Packages may come from the host: tests/CMakeLists.txt takes
# only the portable catch.hpp from the host's Catch2 v2.
set(CMAKE_FIND_ROOT_PATH /usr/${KVC_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# ctest runs the .exe files through Wine when it is installed. WINEPREFIX and
# WINEDEBUG come from the environment (.ci/run sets them).
find_program(KVC_WINE64 NAMES wine64 PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(KVC_WINE64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${KVC_WINE64})
endif()
