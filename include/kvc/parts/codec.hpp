// ===========================================================================
// Codec
//
// encode_/decode_/validate_ functions for every structure of the layout,
// usable in constant expressions. decode_ takes what is stored; validate_
// applies the spec's rules in the spec's order (spec 12.7).
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

namespace detail {
// The header CRC: CRC32C over bytes 0..63 with 48..51 taken as zero, then over
// the text length at 64..67 (spec "Version 2 header").
constexpr std::uint32_t header_v2_crc(const std::uint8_t* bytes) noexcept {
  namespace v2 = layout::header_v2;
  constexpr std::uint8_t zeros[4] = {0, 0, 0, 0};
  std::uint32_t s = 0xFFFFFFFFu;
  s = crc32c_portable(s, bytes, v2::header_crc.offset);
  s = crc32c_portable(s, zeros, v2::header_crc.size);
  s = crc32c_portable(s, bytes + v2::header_crc.end(), v2::size - v2::header_crc.end());
  return ~s;
}
}  // namespace detail

namespace detail {
// One field of a table between its struct member and its stored bytes; a
// field a structure lacks (size 0) is neither written nor read.
template <class T>
constexpr void put_field(std::uint8_t* b, field f, const T& v) noexcept {
  if constexpr (std::is_integral_v<T>) {
    if (f.size != 0) store<T>(b, f, v);
  } else {
    for (std::size_t i = 0; i < f.size; ++i) b[f.offset + i] = v[i];
  }
}
template <class T>
constexpr void get_field(const std::uint8_t* b, field f, T& v) noexcept {
  if constexpr (std::is_integral_v<T>) {
    v = f.size != 0 ? load<T>(b, f) : T{0};
  } else {
    for (std::size_t i = 0; i < f.size; ++i) v[i] = b[f.offset + i];
  }
}
}  // namespace detail

// Encodes every field of h as stored bytes. For version 2 the header CRC is
// computed from the other 64 bytes; h.header_crc is ignored.
constexpr header_bytes encode_header(const header& h) noexcept {
  header_bytes out;
  std::uint8_t* b = out.data();
  for (std::size_t i = 0; i < layout::header_common::magic.size; ++i)
    b[layout::header_common::magic.offset + i] = kvc_magic[i];
#define KVC_ENCODE_MEMBER(member, type, default_value) \
  detail::put_field(b, h.version == 1 ? layout::header_v1::member : layout::header_v2::member, h.member);
  KVC_HEADER_FIELDS(KVC_ENCODE_MEMBER)
#undef KVC_ENCODE_MEMBER
  out.length = h.size();
  if (h.version != 1) detail::store<std::uint32_t>(b, layout::header_v2::header_crc, detail::header_v2_crc(b));
  return out;
}

// How many header bytes a reader needs before it can decode: the version byte
// decides. Returns 0 when the first four bytes are not a KVC header.
constexpr std::size_t header_size_for(const std::uint8_t* first4) noexcept {
  namespace c = layout::header_common;
  for (std::size_t i = 0; i < c::magic.size; ++i)
    if (first4[i] != kvc_magic[i]) return 0;
  switch (first4[c::version.offset]) {
    case 1:
      return layout::header_v1::size;
    case 2:
      return layout::header_v2::size;
    default:
      return 0;
  }
}

// Decodes the stored fields of a header from n bytes. Checks only what is
// needed to know the layout (magic, version, length); field rules and the v2
// header CRC are validate_header's job, so a damaged header can still be shown.
constexpr result<header> decode_header(const std::uint8_t* b, std::size_t n) noexcept {
  namespace c = layout::header_common;
  for (std::size_t i = 0; i < c::magic.size; ++i) {
    if (i >= n) return make_error(errc::truncated, section::header, n);
    if (b[c::magic.offset + i] != kvc_magic[i]) return make_error(errc::bad_magic, section::header, i);
  }
  if (n <= c::version.offset) return make_error(errc::truncated, section::header, n);
  header h;
  h.version = b[c::version.offset];
  if (h.version != 1 && h.version != 2)
    return make_error(errc::unsupported_version, section::header, c::version.offset);
  if (n < h.size()) return make_error(errc::truncated, section::header, n);
  const bool v1 = h.version == 1;
#define KVC_DECODE_MEMBER(member, type, default_value) \
  detail::get_field(b, v1 ? layout::header_v1::member : layout::header_v2::member, h.member);
  KVC_HEADER_FIELDS(KVC_DECODE_MEMBER)
#undef KVC_DECODE_MEMBER
  return h;
}

// h as it will be stored: for version 2 with the header CRC its other fields
// imply.
constexpr header sealed(header h) noexcept {
  if (h.version == 2)
    h.header_crc = detail::load<std::uint32_t>(encode_header(h).data(), layout::header_v2::header_crc);
  return h;
}

namespace detail {
// A header whose CRC failed is a foreign variant when it carries values in
// bytes 20..23 that no CRC32C-v2 writer produces (the LZ4 forks' codec and
// chunk fields, payload ABI 3), or when the file size matches the 48-byte
// v1-style layout exactly (LZ4 first revision).
constexpr bool looks_foreign(const header& h, const std::uint8_t* b, std::uint64_t file_size) noexcept {
  if (h.payload_abi != 0 && h.payload_abi != payload_abi_ds4) return true;
  if (h.reserved[0] != 0 || h.reserved[1] != 0 || h.reserved[2] != 0) return true;
  if (file_size == unknown_size) return false;
  const std::uint64_t text48 = load<std::uint32_t>(b, layout::header_v1::text_bytes);
  std::uint64_t end = 0;
  return !add_overflows(layout::header_v1::size + text48, h.payload_bytes, end) && end == file_size;
}
}  // namespace detail

// Validates a decoded header against the spec's header rules, in the spec's
// order: header CRC (v2), quant bits, token count, reserved bytes, lengths
// against the limits and, when file_size is known, against the file size.
// b is the header's own bytes (h.size() of them).
constexpr error validate_header(const header& h, const std::uint8_t* b, std::uint64_t file_size = unknown_size,
                                const limits& lim = limits{}) noexcept {
  namespace c = layout::header_common;
  if (h.version == 2 && detail::header_v2_crc(b) != h.header_crc) {
    if (detail::looks_foreign(h, b, file_size))
      return make_error(errc::foreign_variant, section::header, c::payload_abi.offset);
    return make_error(errc::header_crc_mismatch, section::header, layout::header_v2::header_crc.offset);
  }
  if (h.quant_bits != 2 && h.quant_bits != 4)
    return make_error(errc::invalid_quant_bits, section::header, c::quant_bits.offset);
  if (h.tokens == 0) return make_error(errc::zero_tokens, section::header, c::tokens.offset);
  for (std::size_t i = 0; i < c::reserved.size; ++i)
    if (h.reserved[i] != 0) return make_error(errc::reserved_nonzero, section::header, c::reserved.offset + i);
  const std::uint64_t text_len_at =
      h.version == 1 ? layout::header_v1::text_bytes.offset : layout::header_v2::text_bytes.offset;
  std::uint64_t end = 0;
  if (detail::add_overflows(h.payload_offset(), h.payload_bytes, end))
    return make_error(errc::length_overflow, section::header, c::payload_bytes.offset);
  if (h.text_bytes > lim.max_text_bytes) return make_error(errc::limit_exceeded, section::header, text_len_at);
  if (h.payload_bytes > lim.max_payload_bytes)
    return make_error(errc::limit_exceeded, section::header, c::payload_bytes.offset);
  if (file_size != unknown_size) {
    if (h.payload_offset() > file_size) return make_error(errc::truncated, section::text, file_size);
    if (end > file_size) return make_error(errc::truncated, section::payload, file_size);
  }
  return {};
}

// ---- Appended sections ----------------------------------------------------

constexpr std::array<std::uint8_t, layout::tool_map::size> encode_tool_map_header(const tool_map_header& t) noexcept {
  std::array<std::uint8_t, layout::tool_map::size> out{};
  for (std::size_t i = 0; i < 3; ++i) out[layout::tool_map::magic.offset + i] = ktm_magic[i];
  detail::store<std::uint8_t>(out.data(), layout::tool_map::version, t.version);
  detail::store<std::uint32_t>(out.data(), layout::tool_map::count, t.count);
  return out;
}

// Decodes and checks a KTM header (magic, version, count limit). `at` is the
// file offset of b, used for error offsets.
constexpr result<tool_map_header> decode_tool_map_header(const std::uint8_t* b, std::uint64_t at,
                                                         const limits& lim = limits{}) noexcept {
  for (std::size_t i = 0; i < 3; ++i)
    if (b[layout::tool_map::magic.offset + i] != ktm_magic[i])
      return make_error(errc::malformed_tool_map, section::tool_map, at + i);
  tool_map_header t;
  t.version = detail::load<std::uint8_t>(b, layout::tool_map::version);
  if (t.version != ktm_version)
    return make_error(errc::malformed_tool_map, section::tool_map, at + layout::tool_map::version.offset);
  t.count = detail::load<std::uint32_t>(b, layout::tool_map::count);
  if (t.count > lim.max_tool_entries)
    return make_error(errc::limit_exceeded, section::tool_map, at + layout::tool_map::count.offset);
  return t;
}

constexpr std::array<std::uint8_t, layout::tool_entry_header::size> encode_tool_entry_header(
    const tool_entry_header& e) noexcept {
  std::array<std::uint8_t, layout::tool_entry_header::size> out{};
  detail::store<std::uint32_t>(out.data(), layout::tool_entry_header::id_bytes, e.id_bytes);
  detail::store<std::uint32_t>(out.data(), layout::tool_entry_header::dsml_bytes, e.dsml_bytes);
  return out;
}

// Decodes and checks one KTM entry header: both lengths at least 1 and within
// the limits. `at` is the file offset of b.
constexpr result<tool_entry_header> decode_tool_entry_header(const std::uint8_t* b, std::uint64_t at,
                                                             const limits& lim = limits{}) noexcept {
  tool_entry_header e;
  e.id_bytes = detail::load<std::uint32_t>(b, layout::tool_entry_header::id_bytes);
  e.dsml_bytes = detail::load<std::uint32_t>(b, layout::tool_entry_header::dsml_bytes);
  if (e.id_bytes == 0 || e.id_bytes > lim.max_tool_id_bytes)
    return make_error(errc::malformed_tool_map, section::tool_map, at + layout::tool_entry_header::id_bytes.offset);
  if (e.dsml_bytes == 0 || e.dsml_bytes > lim.max_tool_dsml_bytes)
    return make_error(errc::malformed_tool_map, section::tool_map, at + layout::tool_entry_header::dsml_bytes.offset);
  return e;
}

constexpr std::array<std::uint8_t, layout::title::size> encode_title_header(std::uint32_t title_bytes) noexcept {
  std::array<std::uint8_t, layout::title::size> out{};
  detail::store<std::uint32_t>(out.data(), layout::title::title_bytes, title_bytes);
  return out;
}

constexpr result<std::uint32_t> decode_title_header(const std::uint8_t* b, std::uint64_t at,
                                                    const limits& lim = limits{}) noexcept {
  const std::uint32_t n = detail::load<std::uint32_t>(b, layout::title::title_bytes);
  if (n > lim.max_title_bytes) return make_error(errc::limit_exceeded, section::title, at);
  return n;
}

// ---- DS4 session payload --------------------------------------------------

constexpr std::array<std::uint8_t, layout::dsv4::size> encode_dsv4_header(const dsv4_header& d) noexcept {
  std::array<std::uint8_t, layout::dsv4::size> out{};
#define KVC_ENCODE_DSV4(member, offset, default_value) \
  detail::store<std::uint32_t>(out.data(), layout::dsv4::member, d.member);
  KVC_DSV4_FIELDS(KVC_ENCODE_DSV4)
#undef KVC_ENCODE_DSV4
  return out;
}

constexpr dsv4_header decode_dsv4_header(const std::uint8_t* b) noexcept {
  dsv4_header d;
#define KVC_DECODE_DSV4(member, offset, default_value) d.member = detail::load<std::uint32_t>(b, layout::dsv4::member);
  KVC_DSV4_FIELDS(KVC_DECODE_DSV4)
#undef KVC_DECODE_DSV4
  return d;
}

// Checks a DSV4 header against the model and the KVC header it sits in.
// Offsets are relative to the payload start.
constexpr error validate_dsv4_header(const dsv4_header& d, const header& h,
                                     const model_desc& m = deepseek_v4_flash) noexcept {
  namespace l = layout::dsv4;
  if (d.magic != l::magic_value) return make_error(errc::payload_malformed, section::payload, l::magic.offset);
  if (d.version != 1 && d.version != 2) return make_error(errc::payload_malformed, section::payload, l::version.offset);
  if (d.layers != m.layers) return make_error(errc::payload_malformed, section::payload, l::layers.offset);
  if (d.head_dim != m.head_dim) return make_error(errc::payload_malformed, section::payload, l::head_dim.offset);
  if (d.indexer_dim != m.indexer_dim)
    return make_error(errc::payload_malformed, section::payload, l::indexer_dim.offset);
  if (d.vocab != m.vocab) return make_error(errc::payload_malformed, section::payload, l::vocab.offset);
  if (d.raw_live > d.raw_capacity || d.raw_live > d.tokens)
    return make_error(errc::payload_malformed, section::payload, l::raw_live.offset);
  if (d.tokens != h.tokens) return make_error(errc::payload_mismatch, section::payload, l::tokens.offset);
  if (d.context != h.context) return make_error(errc::payload_mismatch, section::payload, l::context.offset);
  return {};
}

// Byte count of the part of a DSV4 payload before the per-layer tensors:
// header, token ids, logits, then the two u32[layers] count arrays.
constexpr std::uint64_t dsv4_counts_offset(const dsv4_header& d) noexcept {
  return layout::dsv4::size + 4ull * d.tokens + 4ull * d.vocab;
}
constexpr std::uint64_t dsv4_prefix_bytes(const dsv4_header& d) noexcept {
  return dsv4_counts_offset(d) + 8ull * d.layers;
}

// The payload size a DSV4 header and its per-layer counts imply. comp and
// index hold d.layers counts each. A count above the header's capacity is
// payload_malformed; the error offset is that count's offset in the payload.
constexpr result<std::uint64_t> dsv4_expected_size(const dsv4_header& d, const std::uint32_t* comp,
                                                   const std::uint32_t* index,
                                                   const model_desc& m = deepseek_v4_flash) noexcept {
  // Exact arithmetic, saturating at 2^64 - 1: a size that large can never
  // equal a payload byte count, so it fails the size check as it should.
  constexpr std::uint64_t top = ~std::uint64_t{0};
  auto mul = [](std::uint64_t a, std::uint64_t b) { return a != 0 && b > top / a ? top : a * b; };
  auto add = [](std::uint64_t a, std::uint64_t b) { return b > top - a ? top : a + b; };
  // Two state tensors of coff * dim * coff * ratio f32 each.
  auto states = [&](std::uint64_t coff, std::uint64_t dim, std::uint64_t ratio) {
    return mul(2, mul(mul(mul(coff * coff, dim), ratio), 4));
  };
  const std::uint64_t head_row = mul(4, d.head_dim);
  const std::uint64_t index_row = mul(4, d.indexer_dim);
  std::uint64_t total = dsv4_prefix_bytes(d);
  for (std::uint32_t l = 0; l < d.layers; ++l) {
    const std::uint64_t ratio = m.ratio(l);
    total = add(total, mul(d.raw_live, head_row));
    if (ratio == 0) continue;
    if (comp[l] > d.comp_capacity)
      return make_error(errc::payload_malformed, section::payload, dsv4_counts_offset(d) + 4ull * l);
    const bool indexed = ratio == m.indexed_ratio;
    const std::uint64_t coff = indexed ? 2 : 1;
    total = add(add(total, mul(comp[l], head_row)), states(coff, d.head_dim, ratio));
    if (!indexed) continue;
    if (index[l] > d.comp_capacity)
      return make_error(errc::payload_malformed, section::payload, dsv4_counts_offset(d) + 4ull * (d.layers + l));
    total = add(add(total, mul(index[l], index_row)), states(coff, d.indexer_dim, ratio));
  }
  return total;
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
