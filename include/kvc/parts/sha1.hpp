// ===========================================================================
// SHA-1
//
// FIPS 180-4 SHA-1, used only for file identity names (not for security).
// Kernels compress whole 64-byte blocks, chosen like the CRC32C kernels:
//   shani     x86-64 SHA extensions (sha1rnds4, sha1nexte, sha1msg1/2)
//   armv8     Arm64 SHA1 instructions (sha1c/p/m, sha1h, sha1su0/1)
//   portable  rolled into four 20-round loops over a 16-word schedule;
//             also constexpr
// The CPU kernels live in the "CPU kernels" part and are registered here as
// the CRC32C kernels are (see kernel_dispatch): the best supported one is
// chosen once, on first use; the environment variable KVC_SHA1 or
// sha1_force_kernel() overrides it. Constant evaluation always uses the
// portable kernel.
// ===========================================================================

#if defined(__has_builtin)
#if __has_builtin(__builtin_is_constant_evaluated)
#define KVC_CONSTANT_EVALUATED() __builtin_is_constant_evaluated()
#endif
#endif
#if !defined(KVC_CONSTANT_EVALUATED) && \
    ((defined(__GNUC__) && __GNUC__ >= 9) || (defined(_MSC_VER) && _MSC_VER >= 1925))
#define KVC_CONSTANT_EVALUATED() __builtin_is_constant_evaluated()
#endif
#if !defined(KVC_CONSTANT_EVALUATED)
#define KVC_CONSTANT_EVALUATED() true  // no way to tell: always the portable kernel
#endif

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

namespace detail {
// state[5] += compress(nblocks 64-byte blocks at p).
using sha1_fn = void (*)(std::uint32_t*, const std::uint8_t*, std::size_t) noexcept;

constexpr std::uint32_t sha1_rotl(std::uint32_t x, int r) noexcept { return (x << r) | (x >> (32 - r)); }

constexpr void sha1_portable(std::uint32_t* state, const std::uint8_t* p, std::size_t nblocks) noexcept {
  for (; nblocks > 0; --nblocks, p += 64) {
    std::uint32_t w[16]{};
    for (std::size_t i = 0; i < 16; ++i)
      w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
             (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    // Word i of the schedule, computed in place in the 16-word ring.
    auto word = [&w](std::size_t i) {
      if (i < 16) return w[i];
      const std::uint32_t v = sha1_rotl(w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15], 1);
      w[i & 15] = v;
      return v;
    };
    auto round = [&](std::uint32_t f, std::uint32_t k, std::uint32_t wi) {
      const std::uint32_t t = sha1_rotl(a, 5) + f + e + k + wi;
      e = d;
      d = c;
      c = sha1_rotl(b, 30);
      b = a;
      a = t;
    };
    std::size_t i = 0;
    for (; i < 20; ++i) round(d ^ (b & (c ^ d)), 0x5A827999u, word(i));
    for (; i < 40; ++i) round(b ^ c ^ d, 0x6ED9EBA1u, word(i));
    for (; i < 60; ++i) round((b & c) | (d & (b | c)), 0x8F1BBCDCu, word(i));
    for (; i < 80; ++i) round(b ^ c ^ d, 0xCA62C1D6u, word(i));
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
  }
}

inline kernel_dispatch<sha1_fn> sha1_dispatch{{"portable", "portable, four 20-round loops", true}, &sha1_portable};
}  // namespace detail

inline kernel_list sha1_kernels() noexcept { return detail::sha1_dispatch.list(); }

inline const char* sha1_active_kernel() noexcept { return detail::sha1_dispatch.name_of(detail::sha1_dispatch.get()); }

// Selects a SHA-1 kernel by name for the whole process; false if unknown or
// unsupported. KVC_SHA1=<name> in the environment chooses the first one.
[[nodiscard]] inline bool sha1_force_kernel(const char* name) noexcept { return detail::sha1_dispatch.force(name); }

class sha1 {
 public:
  using digest = std::array<std::uint8_t, 20>;

  constexpr sha1() noexcept = default;

  constexpr sha1& update(const std::uint8_t* p, std::size_t n) noexcept {
    length_ += n;
    if (used_ > 0) {
      const std::size_t take = n < 64 - used_ ? n : 64 - used_;
      for (std::size_t i = 0; i < take; ++i) block_[used_ + i] = p[i];
      used_ += take;
      p += take;
      n -= take;
      if (used_ < 64) return *this;
      compress(block_, 1);
      used_ = 0;
    }
    compress(p, n / 64);  // whole blocks straight from the input
    p += n / 64 * 64;
    n %= 64;
    for (std::size_t i = 0; i < n; ++i) block_[i] = p[i];
    used_ = n;
    return *this;
  }
  sha1& update(const void* p, std::size_t n) noexcept { return update(static_cast<const std::uint8_t*>(p), n); }
  sha1& update(std::string_view s) noexcept { return update(s.data(), s.size()); }

  // Finishes the hash; the object must not be updated afterwards.
  constexpr digest finish() noexcept {
    const std::uint64_t bits = length_ * 8;
    std::uint8_t tail[128]{};
    for (std::size_t i = 0; i < used_; ++i) tail[i] = block_[i];
    tail[used_] = 0x80;
    const std::size_t blocks = used_ < 56 ? 1 : 2;
    for (int i = 0; i < 8; ++i)
      tail[64 * blocks - 1 - static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(bits >> (8 * i));
    compress(tail, blocks);
    digest out{};
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t k = 0; k < 4; ++k) out[4 * i + k] = static_cast<std::uint8_t>(h_[i] >> (24 - 8 * k));
    return out;
  }

  static std::string hex(const digest& d) {
    constexpr char digits[] = "0123456789abcdef";
    std::string s(40, '0');
    for (std::size_t i = 0; i < d.size(); ++i) {
      s[2 * i] = digits[d[i] >> 4];
      s[2 * i + 1] = digits[d[i] & 0xF];
    }
    return s;
  }

 private:
  constexpr void compress(const std::uint8_t* p, std::size_t nblocks) noexcept {
    if (nblocks == 0) return;
    if (KVC_CONSTANT_EVALUATED())
      detail::sha1_portable(h_, p, nblocks);
    else
      detail::sha1_dispatch.get()(h_, p, nblocks);
  }

  std::uint32_t h_[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  std::uint8_t block_[64]{};
  std::size_t used_ = 0;
  std::uint64_t length_ = 0;
};

// The identity name ("<40 hex>.kv") a file with this text, or with this title
// and creation time when ext::title is set, must carry.
inline std::string identity_name_for_text(std::string_view text) {
  return sha1::hex(sha1{}.update(text).finish()) + std::string(file_extension);
}

inline std::string identity_name_for_title(std::string_view title, std::uint64_t created_at) {
  std::uint8_t t[8]{};
  detail::store_le<std::uint64_t>(t, created_at);
  return sha1::hex(sha1{}.update(title).update(t, 8).finish()) + std::string(file_extension);
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
