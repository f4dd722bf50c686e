// Catch2 v2 (single header) or v3, whichever is installed.
#pragma once
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#else
#include <catch2/catch.hpp>
#endif

// A test of a facility this platform lacks (POSIX file descriptors, FIFOs,
// LD_PRELOAD, fork, tmpfs on Windows) says so instead of passing silently;
// such tests also carry the tag [posix], so `~[posix]` leaves them out.
#define KVC_SKIP(what) WARN("skipped on this platform: needs " what)
