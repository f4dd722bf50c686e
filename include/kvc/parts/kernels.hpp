// ===========================================================================
// CPU kernels
//
// The CRC32C kernels (x86-64: sse42, three crc32 streams merged with
// PCLMULQDQ; avx512, VPCLMULQDQ folding fused with crc32 streams; Arm64:
// armv8, three streams merged with PMULL) and the SHA-1 kernels (x86-64 SHA
// extensions, Arm64 SHA1 instructions), the run-time CPU detection that
// chooses among them, and their registration with the format core's
// dispatch (see kernel_dispatch). Per-function target attributes mean no -m
// flags are needed. KVC_CRC32C_NO_HW leaves out the CRC32C kernels only.
// ===========================================================================

#if defined(_MSC_VER) && !defined(__clang__)
#define KVC_MSVC 1
#else
#define KVC_MSVC 0
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(_M_ARM64EC)
#define KVC_ARCH_X86_64 1
#if KVC_MSVC
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#include <immintrin.h>
#endif
#elif (defined(__aarch64__) && defined(__AARCH64EL__)) || defined(_M_ARM64)
#define KVC_ARCH_ARM64 1
#include <arm_acle.h>
#include <arm_neon.h>
#if defined(__linux__) || defined(__ANDROID__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#endif

// CRC32C kernels compiled into this build.
#if defined(KVC_ARCH_X86_64) && !defined(KVC_CRC32C_NO_HW)
#define KVC_CRC32C_X86 1
#elif defined(KVC_ARCH_ARM64) && !defined(KVC_CRC32C_NO_HW)
#define KVC_CRC32C_ARM64 1
#endif

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {
namespace detail {

#if defined(KVC_CRC32C_X86) || defined(KVC_CRC32C_ARM64)
// x^(e - m) mod P, m small; x has order dividing 2^31 - 1, so x^-m == x^(2^31-1-m).
constexpr std::uint32_t crc32c_xpow_minus(std::uint64_t e, std::uint32_t m) noexcept {
  return crc32c_mulmod(crc32c_xpow(e), crc32c_xpow(0x7FFFFFFFu - m));
}
// Multiplying constant for the "clmul, then crc32 of the 64-bit product" step:
// crc32_u64(0, clmul(a, k)) == a * k * x^33 mod P, so shifting a by L bytes
// uses k = x^(8L - 33).
constexpr std::uint32_t crc32c_shift_k(std::uint64_t bytes) noexcept { return crc32c_xpow_minus(8u * bytes, 33); }
// T[k] = x^(8 * 2^k - 33) mod P, k = 0..63 (runtime shift constants).
struct crc32c_shift_table_t {
  std::uint32_t v[64];
};
constexpr crc32c_shift_table_t crc32c_make_shift_table() noexcept {
  crc32c_shift_table_t t{};
  const std::uint32_t xm33 = crc32c_xpow(0x7FFFFFFFu - 33u);
  for (unsigned k = 0; k < 64; ++k) t.v[k] = crc32c_mulmod(crc32c_xpow(1, k + 3), xm33);
  return t;
}
inline constexpr crc32c_shift_table_t crc32c_shift_table = crc32c_make_shift_table();
inline constexpr std::uint32_t crc32c_xm33 = crc32c_xpow(0x7FFFFFFFu - 33u);
#endif

// ===========================================================================
// Hardware primitives. Each architecture supplies the crc32 instruction at
// four widths (KVC_CRC32C_HW_U64 .. _U8) and crc32c_hw_mul33, a carry-less
// multiply that merges streams; the stream code below is shared.
// ===========================================================================
#if defined(KVC_CRC32C_X86)
#if KVC_MSVC
#define KVC_CRC32C_TARGET_CRC
#define KVC_CRC32C_TARGET_STREAMS
#define KVC_CRC32C_TARGET_AVX512
#else
#define KVC_CRC32C_TARGET_CRC __attribute__((target("sse4.2")))
#define KVC_CRC32C_TARGET_STREAMS __attribute__((target("sse4.2,pclmul")))
#define KVC_CRC32C_TARGET_AVX512 __attribute__((target("sse4.2,pclmul,avx2,avx512f,avx512bw,avx512vl,vpclmulqdq")))
#endif
#define KVC_CRC32C_HW_U64(c, v) static_cast<std::uint32_t>(_mm_crc32_u64(c, v))
#define KVC_CRC32C_HW_U32(c, v) _mm_crc32_u32(c, v)
#define KVC_CRC32C_HW_U16(c, v) _mm_crc32_u16(c, v)
#define KVC_CRC32C_HW_U8(c, v) _mm_crc32_u8(c, v)

// a * k * x^33 mod P  (one PCLMULQDQ + one crc32).
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_mul33(std::uint32_t a, std::uint32_t k) noexcept {
  const __m128i prod =
      _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(a)), _mm_cvtsi32_si128(static_cast<int>(k)), 0x00);
  return static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(prod))));
}

#elif defined(KVC_CRC32C_ARM64)
#if KVC_MSVC
#define KVC_CRC32C_TARGET_CRC
#define KVC_CRC32C_TARGET_STREAMS
#elif defined(__clang__)
#define KVC_CRC32C_TARGET_CRC __attribute__((target("crc")))
#define KVC_CRC32C_TARGET_STREAMS __attribute__((target("crc,crypto")))
#else
#define KVC_CRC32C_TARGET_CRC __attribute__((target("+crc")))
#define KVC_CRC32C_TARGET_STREAMS __attribute__((target("+crc+crypto")))
#endif
// clang <= 16's <arm_acle.h> hides __crc32c* unless __ARM_FEATURE_CRC32 is
// predefined; its builtins work with the target attribute.
#if defined(__clang__)
#define KVC_CRC32C_HW_U64(c, v) __builtin_arm_crc32cd(c, v)
#define KVC_CRC32C_HW_U32(c, v) __builtin_arm_crc32cw(c, v)
#define KVC_CRC32C_HW_U16(c, v) __builtin_arm_crc32ch(c, v)
#define KVC_CRC32C_HW_U8(c, v) __builtin_arm_crc32cb(c, v)
#else
#define KVC_CRC32C_HW_U64(c, v) __crc32cd(c, v)
#define KVC_CRC32C_HW_U32(c, v) __crc32cw(c, v)
#define KVC_CRC32C_HW_U16(c, v) __crc32ch(c, v)
#define KVC_CRC32C_HW_U8(c, v) __crc32cb(c, v)
#endif

// a * k * x^33 mod P  (one PMULL + one crc32cx).
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_mul33(std::uint32_t a, std::uint32_t k) noexcept {
  const poly128_t prod = vmull_p64(static_cast<poly64_t>(a), static_cast<poly64_t>(k));
  return KVC_CRC32C_HW_U64(0, vgetq_lane_u64(vreinterpretq_u64_p128(prod), 0));
}
#endif

#if defined(KVC_CRC32C_X86) || defined(KVC_CRC32C_ARM64)
KVC_CRC32C_TARGET_CRC inline std::uint32_t crc32c_hw_u64(std::uint32_t c, const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return KVC_CRC32C_HW_U64(c, v);
}

// Single-stream crc32 instruction loop; used for small inputs and tails.
KVC_CRC32C_TARGET_CRC inline std::uint32_t crc32c_hw_serial(std::uint32_t c, const unsigned char* p,
                                                            std::size_t n) noexcept {
  for (; n >= 8; p += 8, n -= 8) c = crc32c_hw_u64(c, p);
  if (n & 4u) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    c = KVC_CRC32C_HW_U32(c, v);
    p += 4;
  }
  if (n & 2u) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    c = KVC_CRC32C_HW_U16(c, v);
    p += 2;
  }
  if (n & 1u) c = KVC_CRC32C_HW_U8(c, *p);
  return c;
}

// Three independent crc32 streams over 3*L bytes, merged by carry-less
// multiplication: the instruction's latency is 3 cycles, its throughput 1.
template <std::size_t L>
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_3way(std::uint32_t s, const unsigned char* p) noexcept {
  static_assert(L % 8 == 0, "stream length must be a multiple of 8");
  constexpr std::uint32_t k1 = crc32c_shift_k(L);
  constexpr std::uint32_t k2 = crc32c_shift_k(2 * L);
  std::uint32_t a = s, b = 0, c = 0;
  for (std::size_t i = 0; i < L; i += 8) {
    a = crc32c_hw_u64(a, p + i);
    b = crc32c_hw_u64(b, p + L + i);
    c = crc32c_hw_u64(c, p + 2 * L + i);
  }
  return crc32c_hw_mul33(a, k2) ^ crc32c_hw_mul33(b, k1) ^ c;
}

// The "sse42" kernel on x86-64 and the "armv8" kernel on Arm64.
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_streams(std::uint32_t s, const unsigned char* p,
                                                                 std::size_t n) noexcept {
  for (; n >= 3 * 4096; p += 3 * 4096, n -= 3 * 4096) s = crc32c_hw_3way<4096>(s, p);
  for (; n >= 3 * 512; p += 3 * 512, n -= 3 * 512) s = crc32c_hw_3way<512>(s, p);
  for (; n >= 3 * 64; p += 3 * 64, n -= 3 * 64) s = crc32c_hw_3way<64>(s, p);
  return crc32c_hw_serial(s, p, n);
}
#endif

// ===========================================================================
// x86-64 AVX-512 kernel
// ===========================================================================
#if defined(KVC_CRC32C_X86)
// x^(8 * bytes - 33) mod P at run time, O(popcount(bytes)) clmul steps.
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_x86_shift_k(std::uint64_t bytes) noexcept {
  std::uint32_t r = crc32c_xm33;
  for (unsigned k = 0; bytes != 0; ++k, bytes >>= 1)
    if (bytes & 1u) r = crc32c_hw_mul33(r, crc32c_shift_table.v[k]);
  return r;
}

// ---- AVX-512 + VPCLMULQDQ ------------------------------------------------
// Folding: a 16-byte lane X (bytes h = X[0..7], l = X[8..15]) that lies d bytes
// before the lane it is folded into becomes clmul(h, x^(8d+32)<<1) ^ clmul(l, x^(8d-32)<<1).
constexpr std::uint64_t crc32c_fold_k(std::uint64_t bits) noexcept { return std::uint64_t{crc32c_xpow(bits)} << 1; }

template <std::size_t D>
KVC_CRC32C_TARGET_AVX512 inline __m512i crc32c_avx512_k() noexcept {
  // (_mm512_set_epi64 rather than broadcast/cast intrinsics: gcc 12's versions of
  // those use _mm512_undefined_* and trigger -Wuninitialized in target functions.)
  constexpr long long hi = static_cast<long long>(crc32c_fold_k(8 * D + 32));
  constexpr long long lo = static_cast<long long>(crc32c_fold_k(8 * D - 32));
  return _mm512_set_epi64(lo, hi, lo, hi, lo, hi, lo, hi);
}

KVC_CRC32C_TARGET_AVX512 inline __m512i crc32c_avx512_fold(__m512i acc, __m512i k, __m512i data) noexcept {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, k, 0x00), _mm512_clmulepi64_epi128(acc, k, 0x11), data,
                                   0x96);
}

KVC_CRC32C_TARGET_AVX512 inline __m512i crc32c_avx512_load(const unsigned char* p) noexcept {
  return _mm512_loadu_si512(static_cast<const void*>(p));
}

// 64-byte accumulator -> raw CRC (state 0 over those 64 bytes).
KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512_reduce(__m512i acc) noexcept {
  constexpr std::uint64_t h48 = crc32c_fold_k(8 * 48 + 32), l48 = crc32c_fold_k(8 * 48 - 32);
  constexpr std::uint64_t h32 = crc32c_fold_k(8 * 32 + 32), l32 = crc32c_fold_k(8 * 32 - 32);
  constexpr std::uint64_t h16 = crc32c_fold_k(8 * 16 + 32), l16 = crc32c_fold_k(8 * 16 - 32);
  const __m512i k =
      _mm512_set_epi64(0, 0, static_cast<long long>(l16), static_cast<long long>(h16), static_cast<long long>(l32),
                       static_cast<long long>(h32), static_cast<long long>(l48), static_cast<long long>(h48));
  const __m512i t =
      _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, k, 0x00), _mm512_clmulepi64_epi128(acc, k, 0x11),
                                _mm512_maskz_mov_epi64(0xC0, acc), 0x96);
  const __m128i x = _mm_ternarylogic_epi64(
      _mm512_maskz_extracti32x4_epi32(0xF, t, 0), _mm512_maskz_extracti32x4_epi32(0xF, t, 1),
      _mm_xor_si128(_mm512_maskz_extracti32x4_epi32(0xF, t, 2), _mm512_maskz_extracti32x4_epi32(0xF, t, 3)), 0x96);
  std::uint32_t c = static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(x))));
  return static_cast<std::uint32_t>(_mm_crc32_u64(c, static_cast<std::uint64_t>(_mm_extract_epi64(x, 1))));
}

// Pure folding, n >= 64.
KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512_fold_all(std::uint32_t s, const unsigned char* p,
                                                                     std::size_t n) noexcept {
  __m512i x0 =
      _mm512_xor_si512(crc32c_avx512_load(p), _mm512_maskz_set1_epi32(static_cast<__mmask16>(1), static_cast<int>(s)));
  if (n >= 256) {
    __m512i x1 = crc32c_avx512_load(p + 64);
    __m512i x2 = crc32c_avx512_load(p + 128);
    __m512i x3 = crc32c_avx512_load(p + 192);
    p += 256;
    n -= 256;
    const __m512i k256 = crc32c_avx512_k<256>();
    while (n >= 256) {
      x0 = crc32c_avx512_fold(x0, k256, crc32c_avx512_load(p));
      x1 = crc32c_avx512_fold(x1, k256, crc32c_avx512_load(p + 64));
      x2 = crc32c_avx512_fold(x2, k256, crc32c_avx512_load(p + 128));
      x3 = crc32c_avx512_fold(x3, k256, crc32c_avx512_load(p + 192));
      p += 256;
      n -= 256;
    }
    x2 = crc32c_avx512_fold(x0, crc32c_avx512_k<128>(), x2);
    x3 = crc32c_avx512_fold(x1, crc32c_avx512_k<128>(), x3);
    x0 = crc32c_avx512_fold(x2, crc32c_avx512_k<64>(), x3);
  } else {
    p += 64;
    n -= 64;
  }
  const __m512i k64 = crc32c_avx512_k<64>();
  while (n >= 64) {
    x0 = crc32c_avx512_fold(x0, k64, crc32c_avx512_load(p));
    p += 64;
    n -= 64;
  }
  return crc32c_hw_serial(crc32c_avx512_reduce(x0), p, n);
}

// Fused: [V | A | B | C | rest].  V (256 + 512m bytes) is folded with
// VPCLMULQDQ while A, B, C (8*W*m bytes each) run through three crc32 streams
// in the same loop; the four partial CRCs are merged with PCLMULQDQ.  Returns
// the raw state after the prefix and advances p / n.  Requires n >= 256 + 512 + 24*W.
template <std::size_t W>
KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512_fused(std::uint32_t s, const unsigned char*& p,
                                                                  std::size_t& n) noexcept {
  constexpr std::size_t vstep = 512, sstep = 8 * W;
  const std::size_t m = (n - 256) / (vstep + 3 * sstep);
  const std::size_t L = sstep * m;
  const std::size_t LV = 256 + vstep * m;
  // Independent of the data: the out-of-order core overlaps this with the loop.
  const std::uint32_t k1 = crc32c_x86_shift_k(L);
  const std::uint32_t k2 = crc32c_hw_mul33(k1, k1);
  const std::uint32_t k3 = crc32c_hw_mul33(k2, k1);

  const unsigned char* v = p;
  const unsigned char* pa = p + LV;
  const unsigned char* pb = pa + L;
  const unsigned char* pc = pb + L;
  __m512i x0 =
      _mm512_xor_si512(crc32c_avx512_load(v), _mm512_maskz_set1_epi32(static_cast<__mmask16>(1), static_cast<int>(s)));
  __m512i x1 = crc32c_avx512_load(v + 64);
  __m512i x2 = crc32c_avx512_load(v + 128);
  __m512i x3 = crc32c_avx512_load(v + 192);
  v += 256;
  const __m512i k256 = crc32c_avx512_k<256>();
  std::uint32_t a = 0, b = 0, c = 0;
  for (std::size_t i = 0; i < m; ++i) {
    x0 = crc32c_avx512_fold(x0, k256, crc32c_avx512_load(v));
    x1 = crc32c_avx512_fold(x1, k256, crc32c_avx512_load(v + 64));
    x2 = crc32c_avx512_fold(x2, k256, crc32c_avx512_load(v + 128));
    x3 = crc32c_avx512_fold(x3, k256, crc32c_avx512_load(v + 192));
    for (std::size_t j = 0; j < W; ++j) {
      a = crc32c_hw_u64(a, pa + 8 * j);
      b = crc32c_hw_u64(b, pb + 8 * j);
      c = crc32c_hw_u64(c, pc + 8 * j);
    }
    x0 = crc32c_avx512_fold(x0, k256, crc32c_avx512_load(v + 256));
    x1 = crc32c_avx512_fold(x1, k256, crc32c_avx512_load(v + 320));
    x2 = crc32c_avx512_fold(x2, k256, crc32c_avx512_load(v + 384));
    x3 = crc32c_avx512_fold(x3, k256, crc32c_avx512_load(v + 448));
    v += vstep;
    pa += sstep;
    pb += sstep;
    pc += sstep;
  }
  x2 = crc32c_avx512_fold(x0, crc32c_avx512_k<128>(), x2);
  x3 = crc32c_avx512_fold(x1, crc32c_avx512_k<128>(), x3);
  x0 = crc32c_avx512_fold(x2, crc32c_avx512_k<64>(), x3);
  const std::uint32_t cv = crc32c_avx512_reduce(x0);
  p += LV + 3 * L;
  n -= LV + 3 * L;
  return crc32c_hw_mul33(cv, k3) ^ crc32c_hw_mul33(a, k2) ^ crc32c_hw_mul33(b, k1) ^ c;
}

// The fused kernel's words per stream per step (3 measured best, see
// tests/bench/README.md) and the smallest input it takes: after up to 63
// bytes of alignment it needs 256 + 512 + 24 * W bytes.
inline constexpr std::size_t crc32c_fused_width = 3;
inline constexpr std::size_t crc32c_fused_min = 8192;
static_assert(crc32c_fused_min >= 63 + 256 + 512 + 24 * crc32c_fused_width,
              "crc32c_avx512_fused would read past the end of its input");

KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512(std::uint32_t s, const unsigned char* p,
                                                            std::size_t n) noexcept {
  if (n < 64) return crc32c_hw_serial(s, p, n);
  if (n >= crc32c_fused_min) {
    const std::size_t mis = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(p) & 63u);
    if (mis != 0) {
      s = crc32c_hw_serial(s, p, 64 - mis);
      p += 64 - mis;
      n -= 64 - mis;
    }
    s = crc32c_avx512_fused<crc32c_fused_width>(s, p, n);
    if (n < 64) return crc32c_hw_serial(s, p, n);
  }
  return crc32c_avx512_fold_all(s, p, n);
}
#endif  // KVC_CRC32C_X86

// ===========================================================================
// CPU feature detection
// ===========================================================================
struct cpu_features {
  bool sse42 = false;   // SSE4.2 crc32 + PCLMULQDQ
  bool avx512 = false;  // + AVX-512 F/BW/VL + VPCLMULQDQ, ZMM state enabled by the OS
  bool armv8 = false;   // CRC32 + PMULL
  bool sha1 = false;    // SHA-1 instructions: x86 SHA extensions + SSSE3/SSE4.1, or Arm64 SHA1
};

#if defined(KVC_ARCH_X86_64)
inline void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) noexcept {
#if KVC_MSVC
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  for (int i = 0; i < 4; ++i) r[i] = static_cast<unsigned>(v[i]);
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}
inline std::uint64_t xgetbv0() noexcept {
#if KVC_MSVC
  return static_cast<std::uint64_t>(_xgetbv(0));
#else
  unsigned lo = 0, hi = 0;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0u));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
#endif
}
#endif

inline cpu_features detect_cpu() noexcept {
  cpu_features f;
#if defined(KVC_ARCH_X86_64)
  unsigned r[4] = {0, 0, 0, 0};
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  if (max_leaf < 1) return f;
  cpuid(1, 0, r);
  const bool sse42 = (r[2] >> 20) & 1u;
  const bool pclmul = (r[2] >> 1) & 1u;
  const bool osxsave = (r[2] >> 27) & 1u;
  f.sse42 = sse42 && pclmul;  // XMM state is architectural on x86-64
  const bool ssse3_sse41 = ((r[2] >> 9) & 1u) && ((r[2] >> 19) & 1u);
  if (max_leaf >= 7) {
    unsigned r7[4] = {0, 0, 0, 0};
    cpuid(7, 0, r7);
    f.sha1 = ssse3_sse41 && ((r7[1] >> 29) & 1u);
  }
  if (!f.sse42 || !osxsave || max_leaf < 7) return f;
  // XCR0: SSE(1) | AVX(2) | opmask(5) | ZMM_Hi256(6) | Hi16_ZMM(7)
  const bool os_zmm = (xgetbv0() & 0xE6u) == 0xE6u;
  cpuid(7, 0, r);
  const bool avx512f = (r[1] >> 16) & 1u;
  const bool avx512bw = (r[1] >> 30) & 1u;
  const bool avx512vl = (r[1] >> 31) & 1u;
  const bool vpclmul = (r[2] >> 10) & 1u;
  f.avx512 = os_zmm && avx512f && avx512bw && avx512vl && vpclmul;
#elif defined(KVC_ARCH_ARM64)
#if defined(__linux__) || defined(__ANDROID__)
  // AT_HWCAP bits of the Linux arm64 ABI (HWCAP_PMULL, HWCAP_SHA1, HWCAP_CRC32).
  constexpr unsigned long hwcap_pmull = 1ul << 4, hwcap_sha1 = 1ul << 5, hwcap_crc32 = 1ul << 7;
  const unsigned long hw = getauxval(AT_HWCAP);
  f.armv8 = (hw & hwcap_crc32) != 0 && (hw & hwcap_pmull) != 0;
  f.sha1 = (hw & hwcap_sha1) != 0;
#elif defined(__APPLE__)
  auto sysctl_flag = [](const char* name) noexcept {
    int v = 0;
    std::size_t len = sizeof(v);
    return sysctlbyname(name, &v, &len, nullptr, 0) == 0 && v != 0;
  };
  f.armv8 = sysctl_flag("hw.optional.armv8_crc32") &&
            (sysctl_flag("hw.optional.arm.FEAT_PMULL") || sysctl_flag("hw.optional.arm.FEAT_AES"));
  f.sha1 = sysctl_flag("hw.optional.arm.FEAT_SHA1");
#elif defined(_WIN32)
  f.armv8 = IsProcessorFeaturePresent(PF_ARM_V8_CRC32_INSTRUCTIONS_AVAILABLE) &&
            IsProcessorFeaturePresent(PF_ARM_V8_CRYPTO_INSTRUCTIONS_AVAILABLE);
  f.sha1 = IsProcessorFeaturePresent(PF_ARM_V8_CRYPTO_INSTRUCTIONS_AVAILABLE);
#elif defined(__ARM_FEATURE_CRC32) && (defined(__ARM_FEATURE_CRYPTO) || defined(__ARM_FEATURE_AES))
  f.armv8 = true;  // guaranteed by the compilation target
  f.sha1 = true;
#endif
#endif
  return f;
}

// ===========================================================================
// SHA-1 kernels
// ===========================================================================
#if defined(KVC_ARCH_X86_64)
#if KVC_MSVC
#define KVC_SHA1_TARGET
#else
#define KVC_SHA1_TARGET __attribute__((target("sha,sse4.1,ssse3")))
#endif
// Four rounds per group g (0..19): the message words of group g are in
// w[g % 4]; the schedule of group g + 4 replaces them when g >= 4 is due.
struct sha1_shani_block {
  __m128i abcd, e_next, w[4];

  template <int G>
  KVC_SHA1_TARGET void group() noexcept {
    if constexpr (G >= 4)
      w[G % 4] = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w[G % 4], w[(G + 1) % 4]), w[(G + 2) % 4]),
                                    w[(G + 3) % 4]);
    const __m128i e_in = G == 0 ? _mm_add_epi32(e_next, w[0]) : _mm_sha1nexte_epu32(e_next, w[G % 4]);
    e_next = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e_in, G / 5);
  }
  template <int... G>
  KVC_SHA1_TARGET void groups(std::integer_sequence<int, G...>) noexcept {
    (group<G>(), ...);
  }
};

KVC_SHA1_TARGET inline void sha1_shani(std::uint32_t* state, const std::uint8_t* p, std::size_t nblocks) noexcept {
  // Big-endian words, word 0 in the top lane: what the SHA instructions take.
  const __m128i reverse = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
  __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0x1B);
  __m128i e = _mm_set_epi32(static_cast<int>(state[4]), 0, 0, 0);
  for (; nblocks > 0; --nblocks, p += 64) {
    sha1_shani_block b;
    b.abcd = abcd;
    b.e_next = e;
    for (int i = 0; i < 4; ++i)
      b.w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)), reverse);
    b.groups(std::make_integer_sequence<int, 20>{});
    e = _mm_sha1nexte_epu32(b.e_next, e);
    abcd = _mm_add_epi32(b.abcd, abcd);
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_shuffle_epi32(abcd, 0x1B));
  state[4] = static_cast<std::uint32_t>(_mm_extract_epi32(e, 3));
}
#elif defined(KVC_ARCH_ARM64)
#if KVC_MSVC
#define KVC_SHA1_TARGET
#elif defined(__clang__)
#define KVC_SHA1_TARGET __attribute__((target("crypto")))
#else
#define KVC_SHA1_TARGET __attribute__((target("+crypto")))
#endif
KVC_SHA1_TARGET inline void sha1_armv8(std::uint32_t* state, const std::uint8_t* p, std::size_t nblocks) noexcept {
  const uint32x4_t k[4] = {vdupq_n_u32(0x5A827999u), vdupq_n_u32(0x6ED9EBA1u), vdupq_n_u32(0x8F1BBCDCu),
                           vdupq_n_u32(0xCA62C1D6u)};
  uint32x4_t abcd = vld1q_u32(state);
  std::uint32_t e = state[4];
  for (; nblocks > 0; --nblocks, p += 64) {
    uint32x4_t w[4];
    for (int i = 0; i < 4; ++i) w[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 16 * i)));
    uint32x4_t x = abcd;
    std::uint32_t y = e;
    for (int g = 0; g < 20; ++g) {
      const uint32x4_t wk = vaddq_u32(w[g % 4], k[g / 5]);
      const std::uint32_t y_next = vsha1h_u32(vgetq_lane_u32(x, 0));
      x = g < 5 ? vsha1cq_u32(x, y, wk) : (g >= 10 && g < 15) ? vsha1mq_u32(x, y, wk) : vsha1pq_u32(x, y, wk);
      y = y_next;
      if (g < 16) w[g % 4] = vsha1su1q_u32(vsha1su0q_u32(w[g % 4], w[(g + 1) % 4], w[(g + 2) % 4]), w[(g + 3) % 4]);
    }
    abcd = vaddq_u32(abcd, x);
    e += y;
  }
  vst1q_u32(state, abcd);
  state[4] = e;
}
#endif

// ===========================================================================
// Registration
// ===========================================================================

// The kernels of one algorithm in this build, best first, portable last,
// and the one to start with: the best the CPU supports, or the one the
// environment variable names (an unknown or unsupported name is ignored; the
// kvc tool warns about it).
template <class Fn, std::size_t N>
struct kernel_table {
  kernel kernels[N];
  Fn fns[N];
  std::size_t initial = N - 1;

  void choose_initial(const char* env_var) noexcept {
    for (std::size_t j = N; j-- > 0;)
      if (kernels[j].supported) initial = j;
#if KVC_MSVC
#pragma warning(push)
#pragma warning(disable : 4996)  // getenv
#endif
    const char* env = std::getenv(env_var);
#if KVC_MSVC
#pragma warning(pop)
#endif
    if (env != nullptr)
      for (std::size_t j = 0; j < N; ++j)
        if (kernels[j].supported && std::strcmp(env, kernels[j].name) == 0) initial = j;
  }
};

inline constexpr std::size_t crc32c_kernel_count =
#if defined(KVC_CRC32C_X86)
    3;
#elif defined(KVC_CRC32C_ARM64)
    2;
#else
    1;
#endif

// Built once, thread-safely, on first use (CPU detection, then KVC_CRC32C).
inline const kernel_set<crc32c_fn>* crc32c_kernel_set() noexcept {
  static const kernel_table<crc32c_fn, crc32c_kernel_count> table = [] {
    const cpu_features cpu = detect_cpu();
    (void)cpu;
    kernel_table<crc32c_fn, crc32c_kernel_count> t{};
    std::size_t i = 0;
#if defined(KVC_CRC32C_X86)
    t.kernels[i] = {"avx512", "AVX-512 VPCLMULQDQ folding fused with 3-way SSE4.2 crc32", cpu.avx512};
    t.fns[i++] = &crc32c_avx512;
    t.kernels[i] = {"sse42", "SSE4.2 crc32, 3 streams merged with PCLMULQDQ", cpu.sse42};
    t.fns[i++] = &crc32c_hw_streams;
#elif defined(KVC_CRC32C_ARM64)
    t.kernels[i] = {"armv8", "ARMv8 CRC32C, 3 streams merged with PMULL", cpu.armv8};
    t.fns[i++] = &crc32c_hw_streams;
#endif
    t.kernels[i] = crc32c_dispatch.portable_info;
    t.fns[i++] = crc32c_dispatch.portable;
    t.choose_initial("KVC_CRC32C");
    return t;
  }();
  static const kernel_set<crc32c_fn> set{table.kernels, table.fns, crc32c_kernel_count, table.initial};
  return &set;
}

inline constexpr std::size_t sha1_kernel_count =
#if defined(KVC_ARCH_X86_64) || defined(KVC_ARCH_ARM64)
    2;
#else
    1;
#endif

// Built once, thread-safely, on first use (CPU detection, then KVC_SHA1).
inline const kernel_set<sha1_fn>* sha1_kernel_set() noexcept {
  static const kernel_table<sha1_fn, sha1_kernel_count> table = [] {
    const cpu_features cpu = detect_cpu();
    (void)cpu;
    kernel_table<sha1_fn, sha1_kernel_count> t{};
    std::size_t i = 0;
#if defined(KVC_ARCH_X86_64)
    t.kernels[i] = {"shani", "x86-64 SHA extensions", cpu.sha1};
    t.fns[i++] = &sha1_shani;
#elif defined(KVC_ARCH_ARM64)
    t.kernels[i] = {"armv8", "Armv8 SHA1 instructions", cpu.sha1};
    t.fns[i++] = &sha1_armv8;
#endif
    t.kernels[i] = sha1_dispatch.portable_info;
    t.fns[i++] = sha1_dispatch.portable;
    t.choose_initial("KVC_SHA1");
    return t;
  }();
  static const kernel_set<sha1_fn> set{table.kernels, table.fns, sha1_kernel_count, table.initial};
  return &set;
}

// Hands the kernels to the format core's dispatch during static
// initialisation of every unit that includes the whole header (the first
// one does it; the rest store the same pointers). The kernel sets are built
// on the first CRC or SHA-1, not here.
inline const bool kernels_registered = [] {
  crc32c_dispatch.source.store(&crc32c_kernel_set, std::memory_order_release);
  sha1_dispatch.source.store(&sha1_kernel_set, std::memory_order_release);
  return true;
}();

}  // namespace detail
}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
