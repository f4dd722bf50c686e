// The C interface of kvc (include/kvc/kvc.h) as a library: the CMake target
// kvc::c and the pkg-config package kvc-c build this one file.
#define KVC_C_IMPLEMENTATION
#include <kvc/kvc.hpp>
