// ===========================================================================
// Everything past the format core: CPU kernels, the platform layer, the
// path-level file operations and the C interface. Left out where
// KVC_CORE_ONLY is defined; a later include without it adds them.
// ===========================================================================
#if !defined(KVC_CORE_ONLY) && !defined(KVC_KVC_HPP_FULL)
#define KVC_KVC_HPP_FULL

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#if defined(__unix__) || defined(__APPLE__)
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define KVC_POSIX 1
#if defined(__linux__)
#include <sys/ioctl.h>
#if __has_include(<linux/fs.h>)
#include <linux/fs.h>  // FICLONE
#endif
#endif
#else
#define KVC_POSIX 0
#endif
// <windows.h> comes in with NOMINMAX and WIN32_LEAN_AND_MEAN (each unless the
// includer defined it or included <windows.h> already), so it defines no
// min/max macros and pulls in no more than kvc uses; kvc itself writes
// (std::numeric_limits<T>::max)() so that it compiles either way.
#if defined(_WIN32)
#include <sys/stat.h>
#ifndef NOMINMAX
#define NOMINMAX
#define KVC_DEFINED_NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#define KVC_DEFINED_WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#ifdef KVC_DEFINED_NOMINMAX
#undef NOMINMAX
#undef KVC_DEFINED_NOMINMAX
#endif
#ifdef KVC_DEFINED_WIN32_LEAN_AND_MEAN
#undef WIN32_LEAN_AND_MEAN
#undef KVC_DEFINED_WIN32_LEAN_AND_MEAN
#endif
#endif
