// With Catch2 v2 this file provides main(); with v3 Catch2WithMain does.
#ifdef KVC_CATCH2_V2_MAIN
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif
