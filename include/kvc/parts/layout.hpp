// ===========================================================================
// Layout
//
// Every on-disk structure as a table of (offset, size) fields, and every
// struct of decoded fields as one X-macro table (KVC_HEADER_FIELDS,
// KVC_DSV4_FIELDS, KVC_LIMIT_FIELDS, KVC_MODEL_FIELDS): the struct, the
// codec, equality, kvc::for_each_field and the C interface's copies are all
// made from it, and compile-time checks tie it to the byte tables. All
// integers are little-endian on disk on every host; bytes are assembled with
// shifts, never by struct punning.
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

struct field {
  std::size_t offset;
  std::size_t size;  // 0: the structure has no such field (see layout::absent)
  constexpr std::size_t end() const noexcept { return offset + size; }
};

namespace detail {
template <class U>
constexpr U load_le(const std::uint8_t* p) noexcept {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | (static_cast<U>(p[i]) << (8 * i)));
  return v;
}

template <class U>
constexpr void store_le(std::uint8_t* p, U v) noexcept {
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

template <class U>
constexpr U load(const std::uint8_t* base, field f) noexcept {
  static_assert(std::is_unsigned_v<U>);
  return load_le<U>(base + f.offset);
}

template <class U>
constexpr void store(std::uint8_t* base, field f, U v) noexcept {
  store_le<U>(base + f.offset, v);
}

// a == b for the value types of the field tables (std::array's == is not
// constexpr before C++20).
template <class T>
constexpr bool same_value(const T& a, const T& b) noexcept {
  if constexpr (std::is_integral_v<T>) {
    return a == b;
  } else {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
}

// a + b, or false when it does not fit in 64 bits.
constexpr bool add_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  out = a + b;
  return out < a;
}
}  // namespace detail

// ---- Byte tables ------------------------------------------------------------
// Bytes 0..47 are shared by both versions. Version 1 puts the text length at
// 48; version 2 puts four CRC32C values at 48..63 and the text length at 64.
// header_v1 and header_v2 name every field of their version (the shared
// ones through header_common); a field a version lacks is `absent`.

namespace layout {
constexpr field absent{0, 0};

namespace header_common {
constexpr field magic{0, 3};           // "KVC"
constexpr field version{3, 1};         // 1 or 2
constexpr field quant_bits{4, 1};      // 2 or 4
constexpr field save_reason{5, 1};     // see kvc::save_reason
constexpr field ext_flags{6, 1};       // see kvc::ext
constexpr field model_id{7, 1};        // 0 = DeepSeek V4 Flash (0 in early builds)
constexpr field tokens{8, 4};          // cached token count, never 0
constexpr field hits{12, 4};           // cache hit count
constexpr field context{16, 4};        // context size the snapshot was made for
constexpr field payload_abi{20, 1};    // 2 = DS4 session payload (0 in early builds)
constexpr field reserved{21, 3};       // zero
constexpr field created_at{24, 8};     // Unix seconds
constexpr field last_used{32, 8};      // Unix seconds
constexpr field payload_bytes{40, 8};  // payload byte count
constexpr std::size_t size = 48;
}  // namespace header_common

namespace header_v1 {
using namespace header_common;
constexpr field text_bytes{48, 4};
constexpr field header_crc = absent;  // version 1 has no CRCs
constexpr field text_crc = absent;
constexpr field payload_crc = absent;
constexpr field sections_crc = absent;
constexpr std::size_t size = 52;  // text starts here
}  // namespace header_v1

namespace header_v2 {
using namespace header_common;
constexpr field header_crc{48, 4};    // over bytes 0..63 with 48..51 zero, then 64..67
constexpr field text_crc{52, 4};      // CRC32C of the text
constexpr field payload_crc{56, 4};   // CRC32C of the payload
constexpr field sections_crc{60, 4};  // CRC32C of every byte after the payload (0 if none)
constexpr field text_bytes{64, 4};
constexpr std::size_t size = 68;  // text starts here
}  // namespace header_v2

// KTM tool-id map section (appended when ext::tool_map is set).
namespace tool_map {
constexpr field magic{0, 3};    // "KTM"
constexpr field version{3, 1};  // 1
constexpr field count{4, 4};    // entry count
constexpr std::size_t size = 8;
}  // namespace tool_map

// The start of each KTM entry: the two lengths; the id bytes, then the DSML
// bytes follow.
namespace tool_entry_header {
constexpr field id_bytes{0, 4};
constexpr field dsml_bytes{4, 4};
constexpr std::size_t size = 8;
}  // namespace tool_entry_header

// Session-title section (appended when ext::title is set): length, then UTF-8.
namespace title {
constexpr field title_bytes{0, 4};
constexpr std::size_t size = 4;
}  // namespace title
}  // namespace layout

constexpr std::uint8_t kvc_magic[3] = {'K', 'V', 'C'};
constexpr std::uint8_t ktm_magic[3] = {'K', 'T', 'M'};
constexpr std::uint8_t ktm_version = 1;
constexpr std::uint8_t payload_abi_ds4 = 2;

// Extension flag bits (header byte 6). Bits 0 and 3 each append a section, in
// bit order; bits 1 and 2 only qualify the text key; bits 4..7 are unknown.
namespace ext {
constexpr std::uint8_t tool_map = 1u << 0;
constexpr std::uint8_t responses_key = 1u << 1;
constexpr std::uint8_t thinking_key = 1u << 2;
constexpr std::uint8_t title = 1u << 3;
constexpr std::uint8_t known = tool_map | responses_key | thinking_key | title;
constexpr std::uint8_t sections = tool_map | title;
}  // namespace ext

// Save reasons (header byte 5). Values above sys_prefix are reported as
// unknown with their raw value; they are not errors.
enum class save_reason : std::uint8_t {
  unknown = 0,
  cold = 1,
  continued = 2,
  evict = 3,
  shutdown = 4,
  agent_system = 5,
  agent_session = 6,
  sys_prefix = 7,
};

constexpr const char* save_reason_name(std::uint8_t raw) noexcept {
  constexpr const char* names[] = {"unknown",  "cold",         "continued",     "evict",
                                   "shutdown", "agent-system", "agent-session", "sys-prefix"};
  return raw < sizeof names / sizeof names[0] ? names[raw] : names[0];
}

// ---- The fixed header ---------------------------------------------------------

using reserved_bytes = std::array<std::uint8_t, 3>;

// The fixed header's fields, in kvc.h's and the manifest's names:
// X(member, type, default). Where each version stores a field is
// layout::header_v1::<member> and layout::header_v2::<member>.
#define KVC_HEADER_FIELDS(X)                                                                    \
  X(version, std::uint8_t, 2)     /* 1 or 2 */                                                  \
  X(quant_bits, std::uint8_t, 2)  /* 2 or 4 */                                                  \
  X(save_reason, std::uint8_t, 0) /* the raw byte, so an unknown value can be shown as it is */ \
  X(ext_flags, std::uint8_t, 0)                                                                 \
  X(model_id, std::uint8_t, 0)                                                                  \
  X(tokens, std::uint32_t, 0)                                                                   \
  X(hits, std::uint32_t, 0)                                                                     \
  X(context, std::uint32_t, 0)                                                                  \
  X(payload_abi, std::uint8_t, payload_abi_ds4)                                                 \
  X(reserved, reserved_bytes, {})                                                               \
  X(created_at, std::uint64_t, 0)                                                               \
  X(last_used, std::uint64_t, 0)                                                                \
  X(payload_bytes, std::uint64_t, 0)                                                            \
  X(text_bytes, std::uint32_t, 0)                                                               \
  X(header_crc, std::uint32_t, 0) /* version 2 only; 0 in version 1 */                          \
  X(text_crc, std::uint32_t, 0)                                                                 \
  X(payload_crc, std::uint32_t, 0)                                                              \
  X(sections_crc, std::uint32_t, 0)

#define KVC_DECLARE_MEMBER(member, type, default_value) type member = default_value;
#define KVC_SAME_MEMBER(member, type, default_value) &&detail::same_value(a.member, b.member)

// The decoded fixed header of either version: raw stored values.
struct header {
  KVC_HEADER_FIELDS(KVC_DECLARE_MEMBER)

  constexpr std::size_t size() const noexcept {
    return version == 1 ? layout::header_v1::size : layout::header_v2::size;
  }
  // Offset of the first byte of the text, of the payload, of the sections.
  constexpr std::uint64_t text_offset() const noexcept { return size(); }
  constexpr std::uint64_t payload_offset() const noexcept { return size() + std::uint64_t{text_bytes}; }
  constexpr std::uint64_t sections_offset() const noexcept { return payload_offset() + payload_bytes; }

  friend constexpr bool operator==(const header& a, const header& b) noexcept {
    return true KVC_HEADER_FIELDS(KVC_SAME_MEMBER);
  }
  friend constexpr bool operator!=(const header& a, const header& b) noexcept { return !(a == b); }
};

// The encoded fixed header: 52 bytes (v1) or 68 bytes (v2).
struct header_bytes {
  std::array<std::uint8_t, layout::header_v2::size> bytes{};
  std::size_t length = 0;
  constexpr const std::uint8_t* data() const noexcept { return bytes.data(); }
  constexpr std::uint8_t* data() noexcept { return bytes.data(); }
  constexpr std::size_t size() const noexcept { return length; }
};

// Calls f(name, value) for every field of h, in KVC_HEADER_FIELDS order;
// value is an unsigned integer, or reserved_bytes for "reserved".
template <class F>
constexpr void for_each_field(const header& h, F&& f) {
#define KVC_VISIT_MEMBER(member, type, default_value) f(#member, h.member);
  KVC_HEADER_FIELDS(KVC_VISIT_MEMBER)
#undef KVC_VISIT_MEMBER
}

namespace detail {
// Checks that the byte tables store every field of KVC_HEADER_FIELDS in the
// type's size (or not at all) and, with the magic, tile the header of
// each version without a gap or an overlap.
constexpr bool header_table_tiles(std::size_t version) {
  bool covered[layout::header_v2::size] = {};
  bool ok = true;
  auto cover = [&](field f, std::size_t size) {
    if (f.size == 0) return;
    ok = ok && f.size == size && f.end() <= (version == 1 ? layout::header_v1::size : layout::header_v2::size);
    for (std::size_t i = f.offset; ok && i < f.end(); ++i) {
      ok = !covered[i];
      covered[i] = true;
    }
  };
  cover(layout::header_common::magic, 3);
#define KVC_COVER_MEMBER(member, type, default_value) \
  cover(version == 1 ? layout::header_v1::member : layout::header_v2::member, sizeof(type));
  KVC_HEADER_FIELDS(KVC_COVER_MEMBER)
#undef KVC_COVER_MEMBER
  const std::size_t n = version == 1 ? layout::header_v1::size : layout::header_v2::size;
  for (std::size_t i = 0; i < n; ++i) ok = ok && covered[i];
  return ok;
}
static_assert(header_table_tiles(1) && header_table_tiles(2),
              "KVC_HEADER_FIELDS and layout::header_v1/v2 must describe every header byte once");
}  // namespace detail

// ---- Reader limits --------------------------------------------------------------

// Field limits a reader enforces: X(member, type, default). Defaults follow
// what ds4 accepts.
#define KVC_LIMIT_FIELDS(X)                                                         \
  X(max_text_bytes, std::uint64_t, 256ull << 20)    /* rendered text */             \
  X(max_payload_bytes, std::uint64_t, 1ull << 40)   /* streamed, never allocated */ \
  X(max_appended_bytes, std::uint64_t, 1ull << 30)  /* everything after it */       \
  X(max_tool_entries, std::uint32_t, 400000)        /* 4 x ds4's 100000 ids */      \
  X(max_tool_id_bytes, std::uint32_t, 256)          /* ds4 accepts 1..256 */        \
  X(max_tool_dsml_bytes, std::uint32_t, 512u << 20) /* ds4 accepts 1..512 MiB */    \
  X(max_title_bytes, std::uint32_t, 1u << 20)

struct limits {
  KVC_LIMIT_FIELDS(KVC_DECLARE_MEMBER)
};

// ---- Appended sections ----------------------------------------------------------

struct tool_map_header {
  std::uint8_t version = ktm_version;
  std::uint32_t count = 0;
};

struct tool_entry_header {
  std::uint32_t id_bytes = 0;
  std::uint32_t dsml_bytes = 0;
};

// ---- DS4 session payload --------------------------------------------------------

// The DSV4 header: thirteen u32 fields at the start of the payload,
// X(member, offset, default).
#define KVC_DSV4_FIELDS(X)                                               \
  X(magic, 0, layout::dsv4::magic_value) /* 0x34565344 "DSV4" */         \
  X(version, 4, 1)                       /* 1 or 2 */                    \
  X(context, 8, 0)                       /* saved context size */        \
  X(prefill_chunk, 12, 0)                /* prefill chunk size */        \
  X(raw_capacity, 16, 0)                 /* raw KV ring capacity */      \
  X(raw_window, 20, 0)                   /* raw sliding-window length */ \
  X(comp_capacity, 24, 0)                /* compressed KV capacity */    \
  X(tokens, 28, 0)                       /* checkpoint token count */    \
  X(layers, 32, 0)                       /* layer count */               \
  X(head_dim, 36, 0)                     /* raw/head KV dimension */     \
  X(indexer_dim, 40, 0)                  /* indexer head dimension */    \
  X(vocab, 44, 0)                        /* vocabulary size */           \
  X(raw_live, 48, 0)                     /* live raw rows per layer */

namespace layout {
namespace dsv4 {
constexpr std::uint32_t magic_value = 0x34565344u;
#define KVC_DSV4_LAYOUT(member, offset, default_value) constexpr field member{offset, 4};
KVC_DSV4_FIELDS(KVC_DSV4_LAYOUT)
#undef KVC_DSV4_LAYOUT
constexpr std::size_t size = 52;
}  // namespace dsv4
}  // namespace layout

struct dsv4_header {
#define KVC_DSV4_MEMBER(member, offset, default_value) std::uint32_t member = default_value;
  KVC_DSV4_FIELDS(KVC_DSV4_MEMBER)
#undef KVC_DSV4_MEMBER
};

namespace detail {
constexpr bool dsv4_table_tiles() {
  std::size_t at = 0;
#define KVC_DSV4_NEXT(member, offset, default_value) at = at == offset ? at + 4 : layout::dsv4::size + 1;
  KVC_DSV4_FIELDS(KVC_DSV4_NEXT)
#undef KVC_DSV4_NEXT
  return at == layout::dsv4::size;
}
static_assert(dsv4_table_tiles(), "KVC_DSV4_FIELDS must tile the 52-byte DSV4 header in order");
}  // namespace detail

// The model a DSV4 payload was made for: X(member, type, default). Layers
// below uncompressed_layers keep raw rows only; from there even layers
// compress by even_ratio (with an indexer) and odd layers by odd_ratio.
#define KVC_MODEL_FIELDS(X)                \
  X(name, const char*, "ds4-flash")        \
  X(layers, std::uint32_t, 43)             \
  X(head_dim, std::uint32_t, 512)          \
  X(indexer_dim, std::uint32_t, 128)       \
  X(vocab, std::uint32_t, 129280)          \
  X(sliding_window, std::uint32_t, 128)    \
  X(uncompressed_layers, std::uint32_t, 2) \
  X(even_ratio, std::uint32_t, 4)          \
  X(odd_ratio, std::uint32_t, 128)         \
  X(indexed_ratio, std::uint32_t, 4) /* layers with this ratio carry indexer rows */

struct model_desc {
  KVC_MODEL_FIELDS(KVC_DECLARE_MEMBER)

  constexpr std::uint32_t ratio(std::uint32_t layer) const noexcept {
    if (layer < uncompressed_layers) return 0;
    return layer % 2 == 0 ? even_ratio : odd_ratio;
  }

  // A reader refuses a description that cannot describe a payload (spec "Model description").
  constexpr bool usable() const noexcept { return indexed_ratio != 0 && layers != 0 && uncompressed_layers <= layers; }
};

constexpr model_desc deepseek_v4_flash{};

// ---- File identity ----------------------------------------------------------
// Files are named <sha1-hex>.kv: the SHA-1 of the text, or, when ext::title is
// set, of the title bytes followed by created_at as u64 little-endian.
constexpr std::string_view file_extension = ".kv";
constexpr std::size_t identity_name_size = 40 + 3;

// Unknown file size, for a stream that cannot tell.
constexpr std::uint64_t unknown_size = ~std::uint64_t{0};

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
