// ===========================================================================
// CRC32C
//
// Castagnoli CRC: reflected polynomial 0x82F63B78, initial value and final
// xor 0xFFFFFFFF, stored unmasked. Kernels work on the raw register state
// (the complement of the CRC) so they can be chained without re-inverting.
// This part holds the portable kernel (slicing-by-8 over compile-time
// tables, also constexpr: the v2 header CRC needs it in constant
// expressions), the GF(2) arithmetic behind crc32c_combine and
// crc32c_extend_zeros (O(log n)), and the dispatch. The CPU kernels (sse42,
// avx512, armv8) live in the "CPU kernels" part after the format core, which
// registers them here (see kernel_dispatch).
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// A CRC32C or SHA-1 implementation compiled into this build.
struct kernel {
  const char* name;
  const char* description;
  bool supported;  // usable on the running CPU/OS
};

// The kernels of one algorithm, best first, portable last:
// for (const kvc::kernel& k : kvc::crc32c_kernels()).
struct kernel_list {
  const kernel* first;
  std::size_t count;
  constexpr const kernel* begin() const noexcept { return first; }
  constexpr const kernel* end() const noexcept { return first + count; }
  constexpr std::size_t size() const noexcept { return count; }
  constexpr const kernel& operator[](std::size_t i) const noexcept { return first[i]; }
};

namespace detail {
// The kernels of one algorithm that the program has, built once on first use
// by the "CPU kernels" part (CPU detection, then the environment variable).
template <class Fn>
struct kernel_set {
  const kernel* kernels;
  const Fn* fns;
  std::size_t count;
  std::size_t initial;  // the best supported kernel, or the environment's choice
};

// The dispatch of one algorithm (CRC32C, SHA-1). The format core knows only
// the portable kernel; the "CPU kernels" part sets `source` during static
// initialisation of any unit that includes the whole header, so from then on
// every unit of the program, KVC_CORE_ONLY ones too, uses the CPU's kernels.
// Without it (a program of core-only units, or a call made before static
// initialisation ran) the portable kernel answers and nothing is cached: the
// result is the same, only slower. Constant-initialised.
template <class Fn>
struct kernel_dispatch {
  kernel portable_info;
  Fn portable;
  std::atomic<const kernel_set<Fn>* (*)() noexcept> source{nullptr};
  std::atomic<Fn> active{nullptr};  // the kernel in use, once chosen or forced

  const kernel_set<Fn>* set() const noexcept {
    const auto s = source.load(std::memory_order_acquire);
    return s != nullptr ? s() : nullptr;
  }
  Fn get() noexcept {
    const Fn f = active.load(std::memory_order_acquire);
    if (f != nullptr) return f;
    const kernel_set<Fn>* s = set();
    if (s == nullptr) return portable;
    Fn expected = nullptr;
    const Fn chosen = s->fns[s->initial];
    if (active.compare_exchange_strong(expected, chosen, std::memory_order_acq_rel, std::memory_order_acquire))
      return chosen;
    return expected;  // another thread chose or forced first
  }
  kernel_list list() const noexcept {
    const kernel_set<Fn>* s = set();
    return s != nullptr ? kernel_list{s->kernels, s->count} : kernel_list{&portable_info, 1};
  }
  const char* name_of(Fn f) const noexcept {
    if (const kernel_set<Fn>* s = set())
      for (std::size_t j = 0; j < s->count; ++j)
        if (s->fns[j] == f) return s->kernels[j].name;
    return f == portable ? portable_info.name : "unknown";
  }
  // Selects a kernel by name for the whole process; false if unknown or
  // unsupported.
  bool force(const char* name) noexcept {
    if (name == nullptr) return false;
    const kernel_set<Fn>* s = set();
    const kernel_list l = list();
    for (std::size_t j = 0; j < l.size(); ++j) {
      if (std::strcmp(name, l[j].name) != 0) continue;
      if (!l[j].supported) return false;
      active.store(s != nullptr ? s->fns[j] : portable, std::memory_order_release);
      return true;
    }
    return false;
  }
};

using crc32c_fn = std::uint32_t (*)(std::uint32_t, const unsigned char*, std::size_t) noexcept;

// ---- The portable kernel ----------------------------------------------------
constexpr std::uint32_t crc32c_poly = 0x82F63B78u;

struct crc32c_tables_t {
  std::uint32_t t[8][256];
};

constexpr crc32c_tables_t make_crc32c_tables() noexcept {
  crc32c_tables_t tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? crc32c_poly : 0u);
    tables.t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i)
    for (int s = 1; s < 8; ++s) tables.t[s][i] = (tables.t[s - 1][i] >> 8) ^ tables.t[0][tables.t[s - 1][i] & 0xFFu];
  return tables;
}

inline constexpr crc32c_tables_t crc32c_tables = make_crc32c_tables();

constexpr std::uint32_t crc32c_portable(std::uint32_t state, const unsigned char* p, std::size_t n) noexcept {
  const auto& t = crc32c_tables.t;
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint32_t lo = state ^ load_le<std::uint32_t>(p);
    const std::uint32_t hi = load_le<std::uint32_t>(p + 4);
    state = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][hi & 0xFFu] ^
            t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) state = (state >> 8) ^ t[0][(state ^ *p) & 0xFFu];
  return state;
}

// ---------------------------------------------------------------------------
// GF(2)[x] / P arithmetic in the reflected representation used by CRC32C:
// bit 31 holds the coefficient of x^0, bit 0 the coefficient of x^31.
// ---------------------------------------------------------------------------
inline constexpr std::uint32_t crc32c_x0 = 0x80000000u;  // the polynomial 1

constexpr std::uint32_t crc32c_mulmod(std::uint32_t a, std::uint32_t b) noexcept {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i) {
    if (a & (crc32c_x0 >> i)) r ^= b;                    // a_i * b * x^i
    b = (b & 1u) ? ((b >> 1) ^ crc32c_poly) : (b >> 1);  // b *= x
  }
  return r;
}

// x^(2^k) mod P for k = 0..30.  For CRC32C x^(2^31) == x (mod P), so the
// sequence repeats with period 31 (checked below); index with k % 31.
struct crc32c_x2n_t {
  std::uint32_t v[31];
};
constexpr crc32c_x2n_t crc32c_make_x2n() noexcept {
  crc32c_x2n_t t{};
  std::uint32_t p = crc32c_x0 >> 1;  // x^1
  for (int k = 0; k < 31; ++k) {
    t.v[k] = p;
    p = crc32c_mulmod(p, p);
  }
  return t;
}
inline constexpr crc32c_x2n_t crc32c_x2n = crc32c_make_x2n();
static_assert(crc32c_mulmod(crc32c_x2n.v[30], crc32c_x2n.v[30]) == crc32c_x2n.v[0],
              "CRC32C: x^(2^31) must equal x mod P (period 31)");

// x^(e * 2^k0) mod P, O(log e) multiplications; valid for every 64-bit e.
constexpr std::uint32_t crc32c_xpow(std::uint64_t e, unsigned k0 = 0) noexcept {
  std::uint32_t r = crc32c_x0;
  unsigned k = k0 % 31u;
  while (e != 0) {
    if (e & 1u) r = crc32c_mulmod(crc32c_x2n.v[k], r);
    e >>= 1;
    k = (k == 30u) ? 0u : k + 1u;
  }
  return r;
}
// x^(8n) mod P: multiplying the raw state by it == appending n zero bytes.
constexpr std::uint32_t crc32c_xpow8n(std::uint64_t n) noexcept { return crc32c_xpow(n, 3); }
static_assert(crc32c_xpow(0x7FFFFFFFu) == crc32c_x0, "CRC32C: order of x divides 2^31-1");

// Raw state after appending n zero bytes.
constexpr std::uint32_t crc32c_shift(std::uint32_t state, std::uint64_t n) noexcept {
  return crc32c_mulmod(crc32c_xpow8n(n), state);
}

inline kernel_dispatch<crc32c_fn> crc32c_dispatch{{"portable", "portable table-driven", true}, &crc32c_portable};

}  // namespace detail

inline kernel_list crc32c_kernels() noexcept { return detail::crc32c_dispatch.list(); }

inline const char* crc32c_active_kernel() noexcept {
  return detail::crc32c_dispatch.name_of(detail::crc32c_dispatch.get());
}

// Selects a kernel by name for the whole process; false if unknown or
// unsupported. KVC_CRC32C=<name> in the environment chooses the first one.
[[nodiscard]] inline bool crc32c_force_kernel(const char* name) noexcept { return detail::crc32c_dispatch.force(name); }

// Standard CRC32C (init/final xor 0xFFFFFFFF): crc32c_extend(crc32c(A), B) == crc32c(A||B).
inline std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  // Every kernel starts with a scalar path for small sizes.
  return ~detail::crc32c_dispatch.get()(~crc, static_cast<const unsigned char*>(data), size);
}

inline std::uint32_t crc32c(const void* data, std::size_t size) noexcept { return crc32c_extend(0, data, size); }

// crc32c(A||B) from crc32c(A), crc32c(B) and |B|; O(log |B|).
constexpr std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b) noexcept {
  return detail::crc32c_shift(crc_a, len_b) ^ crc_b;
}

// crc32c(A || n zero bytes) from crc32c(A); O(log n).
constexpr std::uint32_t crc32c_extend_zeros(std::uint32_t crc, std::uint64_t n_zero_bytes) noexcept {
  return ~detail::crc32c_shift(~crc, n_zero_bytes);
}

// crc32c_extend and crc32c for constant expressions, over the bytes of s.
constexpr std::uint32_t crc32c_extend_constexpr(std::uint32_t crc, std::string_view s) noexcept {
  std::uint32_t state = ~crc;
  for (char ch : s) {
    const unsigned char b = static_cast<unsigned char>(ch);
    state = detail::crc32c_portable(state, &b, 1);
  }
  return ~state;
}

constexpr std::uint32_t crc32c_constexpr(std::string_view s) noexcept { return crc32c_extend_constexpr(0, s); }

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
