// inspect.cpp - kvc inspect: every header field, the four CRCs recomputed
// over the file (even a corrupt one), sections, DSV4 header, identity and the
// verdict of a full verification.
//
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <kvc/kvc.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "check.hpp"
#include "output.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::hex32;
using kvc_examples::iso_utc;
using kvc_examples::size_text;

// A byte range of the file whose CRC32C inspect reports.
struct region {
  std::uint64_t begin = 0, end = 0;
  std::uint32_t crc = 0;
  std::uint64_t seen = 0;  // bytes folded in so far
  bool complete() const { return seen == end - begin; }
};

const char* const region_names[3] = {"text", "payload", "appended area"};

// Everything inspect learns about one file.
struct inspection {
  outcome o;  // the verdict of a full verification (o.info: what the reader found)
  std::uint64_t file_size = 0;
  // The first bytes, shown when the header does not decode.
  std::array<std::uint8_t, kvc::layout::header_v2::size> raw{};
  std::size_t raw_size = 0;         // bytes of raw the file has (at most 68)
  kvc::error header_check;          // validate_header's verdict: the reader's when it stopped at the header
  std::array<region, 3> regions{};  // text, payload, appended area
  bool regions_valid = false;       // the header decoded and its lengths fit in 64 bits
  std::array<std::uint8_t, kvc::layout::dsv4::size> dsv4_bytes{};  // the payload's first bytes
  bool dsv4_in_file = false;                                       // all 52 of them are in the file
  std::optional<kvc::dsv4_header> dsv4;
  const char* dsv4_model = nullptr;  // the model the DSV4 check ran against
  bool title_read = false;           // the whole title section was read
  kvc::error title_error;            // else why not (bit 3 set and the section reached)
};

// read_at on the source the reader used; a failure is in.o's I/O problem.
kvc::io_result fetch(kvc::file_source& src, void* p, std::size_t n, std::uint64_t at, inspection& in) {
  const kvc::io_result r = read_at(src, p, n, at);
  if (r.status != kvc::io_status::ok) in.o.os_problem = os_error_text(r.os_error);
  return r;
}

// Finishes the CRC of every region from where the reader stopped in it
// (file_info::computed), so each byte is read and checksummed once: the
// reader's pass, then this one over what it did not reach. Returns false on
// a read error.
bool finish_regions(kvc::file_source& src, inspection& in) {
  std::vector<std::uint8_t> buf;
  for (std::size_t i = 0; i < in.regions.size(); ++i) {
    region& r = in.regions[i];
    r.crc = in.o.info.computed[i].crc;
    r.seen = in.o.info.computed[i].bytes;
    while (!r.complete()) {
      const std::uint64_t at = r.begin + r.seen;
      buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(r.end - at, std::uint64_t{1} << 20)));
      const kvc::io_result got = fetch(src, buf.data(), buf.size(), at, in);
      if (got.status != kvc::io_status::ok) return false;
      r.crc = kvc::crc32c_extend(r.crc, buf.data(), got.bytes);
      r.seen += got.bytes;
      if (got.bytes < buf.size()) break;  // the file ends inside the region
    }
  }
  return true;
}

// Whether the title the reader kept is the whole title. The reader marks the
// title as present once it starts on the section and keeps what it got, so a
// title section that is cut short or declares more than the limit leaves a
// partial (often empty) title. Then title_error is the title's own error
// (rows 15i to 15k of the spec's check table): the verdict when it names the
// title; when a failing sections CRC is the verdict (version 2) and hides it,
// the title's length is read again (4 bytes) to tell: file_info keeps neither
// the hidden error nor the declared length. Any other verdict means the
// reader went past the title, or never reached it. Returns false on a read
// error.
bool judge_title(kvc::file_source& src, const kvc::read_options& opt, inspection& in) {
  const kvc::file_info& info = in.o.info;
  if (!info.has_title) return true;
  if (in.o.err && in.o.err.where == kvc::section::title) {
    in.title_error = in.o.err;
    return true;
  }
  if (in.o.err.code != kvc::errc::sections_crc_mismatch) {
    in.title_read = true;
    return true;
  }
  // The title follows the tool map, which was read whole (else the reader
  // would not have started on the title) and kept.
  std::uint64_t at = in.regions[2].begin;
  if (info.has_tool_map) {
    at += kvc::layout::tool_map::size;
    for (const kvc::tool_entry& t : info.tools)
      at += kvc::layout::tool_entry_header::size + t.id.size() + t.dsml.size();
  }
  std::array<std::uint8_t, kvc::layout::title::size> b{};
  const kvc::io_result got = fetch(src, b.data(), b.size(), at, in);
  if (got.status != kvc::io_status::ok) return false;
  const auto truncated = kvc::make_error(kvc::errc::truncated, kvc::section::title, in.file_size);
  if (got.bytes < b.size()) {
    in.title_error = truncated;
    return true;
  }
  const kvc::result<std::uint32_t> length = kvc::decode_title_header(b.data(), at, opt.limits);
  if (!length)
    in.title_error = length.error();
  else if (at + b.size() + *length > in.file_size || info.title.size() != *length)
    in.title_error = truncated;
  else
    in.title_read = true;
  return true;
}

// The first bytes of the file (shown when its header does not decode) and
// those of the payload, where a DSV4 header would be: read before the
// reader moves on, from the source's first read (the whole file when it is
// small). Returns false on a read error.
bool read_ahead(kvc::file_source& src, inspection& in) {
  const kvc::io_result got = fetch(src, in.raw.data(), in.raw.size(), 0, in);
  if (got.status != kvc::io_status::ok) return false;
  in.raw_size = got.bytes;
  const kvc::result<kvc::header> h = kvc::decode_header(in.raw.data(), in.raw_size);
  if (!h || h->payload_bytes < kvc::layout::dsv4::size) return true;
  const kvc::io_result payload = fetch(src, in.dsv4_bytes.data(), in.dsv4_bytes.size(), h->payload_offset(), in);
  in.dsv4_in_file = payload.status == kvc::io_status::ok && payload.bytes == in.dsv4_bytes.size();
  return payload.status == kvc::io_status::ok;
}

// Reads what the file allows: the verdict of a full verification, then what
// the reader did not reach: the rest of each region's CRC, the title's own
// error. Returns false when the file cannot be opened or read.
bool inspect_file(const std::string& path, const args& a, inspection& in) {
  kvc::result<kvc::input_file> file = kvc::input_file::open(path);
  if (!file) {
    in.o.os_problem = open_problem(path, file.error());
    return false;
  }
  in.o.opened = true;
  kvc::file_source src(file->native(), kvc::verify_level::full);
  if (!read_ahead(src, in)) return false;
  kvc::read_options opt = a.read_options(kvc::verify_level::full);
  opt.level = kvc::verify_level::full;
  check_source(
      src, path, opt, true, [](std::uint64_t) {}, in.o);
  if (in.o.io_failure()) return false;
  const kvc::file_info& info = in.o.info;
  in.file_size = info.file_size;
  if (!in.o.decoded) return true;  // in.o.err says why
  // The reader stops at the header when the header breaks a rule.
  if (info.stage == kvc::read_stage::header_decoded) in.header_check = in.o.err;
  const kvc::header& h = info.hdr;
  const std::uint64_t end = h.sections_offset();
  if (end >= h.payload_offset()) {  // else length_overflow: the regions mean nothing
    in.regions_valid = true;
    in.regions[0] = {h.text_offset(), h.payload_offset()};
    in.regions[1] = {h.payload_offset(), end};
    // The appended area runs to EOF; empty (and not checkable) when the
    // file ends before the payload does.
    in.regions[2] = {end, end > in.file_size ? end : in.file_size};
  }
  // The DSV4 header: the reader's when its DSV4 check ran (it keeps none
  // otherwise), else the bytes read ahead.
  in.dsv4_in_file = in.dsv4_in_file && in.regions_valid;
  if (info.dsv4_checked) {
    in.dsv4 = info.dsv4;
    in.dsv4_model = opt.dsv4_model->name;
  } else if (in.dsv4_in_file) {
    const kvc::dsv4_header d = kvc::decode_dsv4_header(in.dsv4_bytes.data());
    if (d.magic == kvc::layout::dsv4::magic_value) in.dsv4 = d;
  }
  return (!in.regions_valid || finish_regions(src, in)) && judge_title(src, opt, in);
}

enum class crc_status { ok, mismatch, not_checked, absent };

const char* crc_status_name(crc_status s) {
  switch (s) {
    case crc_status::ok:
      return "ok";
    case crc_status::mismatch:
      return "mismatch";
    case crc_status::not_checked:
      return "not_checked";
    case crc_status::absent:
      break;
  }
  return "absent";
}

struct crc_report {
  crc_status status;
  std::uint32_t stored;
  std::optional<std::uint32_t> computed;
  std::string note;  // why not checked
};

// The four CRCs: stored value and what the bytes say.
std::array<crc_report, 4> crc_reports(const inspection& in) {
  const kvc::header& h = in.o.info.hdr;
  std::array<crc_report, 4> out{};
  if (h.version == 1) {
    for (crc_report& r : out) r = {crc_status::absent, 0, std::nullopt, "version 1 has no CRCs"};
    return out;
  }
  const bool header_bad =
      in.header_check.code == kvc::errc::header_crc_mismatch || in.header_check.code == kvc::errc::foreign_variant;
  out[0] = {header_bad ? crc_status::mismatch : crc_status::ok, h.header_crc, kvc::sealed(h).header_crc, ""};
  const std::uint32_t stored[3] = {h.text_crc, h.payload_crc, h.sections_crc};
  for (std::size_t i = 0; i < 3; ++i) {
    const region& r = in.regions[i];
    const bool present = r.begin <= in.file_size && r.end <= in.file_size && r.complete();
    if (!in.regions_valid)
      out[i + 1] = {crc_status::not_checked, stored[i], std::nullopt, "declared lengths overflow"};
    else if (!present)
      out[i + 1] = {crc_status::not_checked, stored[i], std::nullopt,
                    std::string(region_names[i]) + " not in the file"};
    else
      out[i + 1] = {r.crc == stored[i] ? crc_status::ok : crc_status::mismatch, stored[i], r.crc, ""};
  }
  return out;
}

std::vector<std::string> ext_flag_names(std::uint8_t flags) {
  static const char* const names[4] = {"tool_map", "responses_key", "thinking_key", "title"};
  std::vector<std::string> out;
  for (unsigned bit = 0; bit < 8; ++bit)
    if (flags & (1u << bit)) out.push_back(bit < 4 ? names[bit] : "bit" + std::to_string(bit));
  return out;
}

const char* model_name(std::uint8_t id) { return id == 0 ? "DeepSeek V4 Flash" : "not defined by the spec"; }

const char* payload_abi_name(std::uint8_t abi) {
  return abi == 0 ? "DS4 session payload, early builds" : abi == 2 ? "DS4 session payload" : "not defined by the spec";
}

// The dsv4_header fields by name, in layout order (the library's field table).
template <class Visit>
void for_each_dsv4_field(const kvc::dsv4_header& d, Visit&& visit) {
#define KVC_TOOL_VISIT_DSV4(member, offset, default_value) visit(#member, d.member);
  KVC_DSV4_FIELDS(KVC_TOOL_VISIT_DSV4)
#undef KVC_TOOL_VISIT_DSV4
}

// The header's fields under their names (kvc::for_each_field; the version
// is a verdict member), each followed by what the tool derives from it;
// null when h is.
void header_json(json_builder& j, const kvc::header* h) {
  kvc::for_each_field(h != nullptr ? *h : kvc::header{}, [&](const char* name, const auto& value) {
    const std::string_view key = name;
    if (key == "version") return;
    if (h == nullptr) {
      j.null(key);
    } else if constexpr (std::is_integral_v<std::decay_t<decltype(value)>>) {
      j.num(key, value);
    } else {  // the reserved bytes
      json_builder bytes(true);
      for (const std::uint8_t b : value) bytes.push(std::to_string(b));
      j.raw(key, bytes.text());
    }
    // What the tool derives from a field follows it.
    const char* derived = key == "save_reason"  ? "save_reason_name"
                          : key == "ext_flags"  ? "ext_flag_names"
                          : key == "created_at" ? "created_at_iso"
                          : key == "last_used"  ? "last_used_iso"
                                                : nullptr;
    if (derived == nullptr) return;
    if (h == nullptr) {
      j.null(derived);
    } else if (key == "save_reason") {
      j.str(derived, kvc::save_reason_name(h->save_reason));
    } else if (key == "ext_flags") {
      json_builder names(true);
      for (const std::string& n : ext_flag_names(h->ext_flags)) names.push(json_string(n));
      j.raw(derived, names.text());
    } else {
      j.str(derived, iso_utc(key == "created_at" ? h->created_at : h->last_used));
    }
  });
}

// Every key is always present; a file that could not be opened or read has
// the verdict (io_error) and nulls.
void print_inspection_json(const std::string& path, const inspection& in) {
  const kvc::header& h = in.o.info.hdr;
  const bool usable = !in.o.io_failure();
  json_builder j = verdict_json(path, in.o, kvc::verify_level::full);
  if (in.o.opened)
    j.num("file_size", in.file_size);
  else
    j.null("file_size");
  header_json(j, usable && in.o.decoded ? &h : nullptr);
  if (usable && in.o.decoded) {
    json_builder crcs;
    const char* const keys[4] = {"header", "text", "payload", "sections"};
    const std::array<crc_report, 4> reports = crc_reports(in);
    for (std::size_t i = 0; i < 4; ++i) {
      json_builder c;
      c.num("stored", reports[i].stored);
      if (reports[i].computed)
        c.num("computed", *reports[i].computed);
      else
        c.null("computed");
      crcs.raw(keys[i], c.str("status", crc_status_name(reports[i].status)).text());
    }
    j.raw("crcs", crcs.text());
  } else {
    j.null("crcs");
  }
  const kvc::file_info& info = in.o.info;
  if (usable && info.has_tool_map) {
    json_builder tools(true);
    for (const kvc::tool_entry& t : info.tools)
      tools.push(json_builder().str("id", t.id).num("dsml_bytes", t.dsml.size()).text());
    j.raw("tool_map", tools.text());
  } else {
    j.null("tool_map");
  }
  // A title that was not read whole is absent: null, with title_error.
  if (usable && in.title_read)
    j.str("title", info.title);
  else
    j.null("title");
  if (usable && in.title_error) {
    json_builder te;
    te.str("error", kvc::errc_name(in.title_error.code)).str("section", kvc::section_name(in.title_error.where));
    j.raw("title_error", te.num("offset", in.title_error.offset).text());
  } else {
    j.null("title_error");
  }
  if (usable && in.o.decoded)
    j.flag("unknown_sections", (h.ext_flags & ~kvc::ext::known) != 0);
  else
    j.null("unknown_sections");
  if (usable && in.dsv4) {
    json_builder d;
    for_each_dsv4_field(*in.dsv4, [&](const char* name, std::uint32_t v) { d.num(name, v); });
    j.raw("dsv4", d.text());
  } else {
    j.null("dsv4");
  }
  print_line(j.text());
}

void print_inspection_text(const std::string& path, const inspection& in) {
  auto line = [](const char* label, const std::string& value) { std::printf("%-18s%s\n", label, value.c_str()); };
  line("path:", escaped(path));
  line("file size:", size_text(in.file_size));
  if (!in.o.decoded) {
    std::string first;
    for (std::size_t i = 0; i < in.raw_size && i < 16; ++i) {
      char b[4];
      std::snprintf(b, sizeof b, "%s%02x", i ? " " : "", static_cast<unsigned>(in.raw[i]));
      first += b;
    }
    line("first bytes:", in.raw_size ? first : "(empty file)");
    line("header:", "does not decode: " + error_message(in.o.err));
    line("verdict:", describe(in.o.err));
    return;
  }
  const kvc::header& h = in.o.info.hdr;
  const kvc::file_info& info = in.o.info;
  line("version:", std::to_string(h.version) + " (" + std::to_string(h.size()) + "-byte header)");
  line("quant bits:", std::to_string(h.quant_bits));
  std::string reason = std::string(kvc::save_reason_name(h.save_reason)) + " (" + std::to_string(h.save_reason) + ")";
  if (h.save_reason > static_cast<std::uint8_t>(kvc::save_reason::sys_prefix))
    reason += ", a value the spec does not define";
  line("save reason:", reason);
  char flags_hex[8];
  std::snprintf(flags_hex, sizeof flags_hex, "0x%02x", static_cast<unsigned>(h.ext_flags));
  std::string flags = flags_hex;
  for (const std::string& n : ext_flag_names(h.ext_flags)) flags += " " + n;
  line("ext flags:", flags);
  line("model id:", std::to_string(h.model_id) + " (" + model_name(h.model_id) + ")");
  line("payload ABI:", std::to_string(h.payload_abi) + " (" + payload_abi_name(h.payload_abi) + ")");
  line("tokens:", std::to_string(h.tokens));
  line("hits:", std::to_string(h.hits));
  line("context:", std::to_string(h.context));
  line("created at:", iso_utc(h.created_at) + " (" + std::to_string(h.created_at) + ")");
  line("last used:", iso_utc(h.last_used) + " (" + std::to_string(h.last_used) + ")");
  line("text:", size_text(h.text_bytes) + " at offset " + std::to_string(h.text_offset()));
  line("payload:", size_text(h.payload_bytes) + " at offset " + std::to_string(h.payload_offset()));
  if (in.regions_valid) {
    const region& s = in.regions[2];
    line("appended:", s.begin <= in.file_size
                          ? size_text(in.file_size - s.begin) + " at offset " + std::to_string(s.begin)
                          : "none (file ends before the payload does)");
  }
  if (h.reserved != std::array<std::uint8_t, 3>{})
    line("reserved:", std::to_string(h.reserved[0]) + " " + std::to_string(h.reserved[1]) + " " +
                          std::to_string(h.reserved[2]) + " (must be 0)");
  line("header check:", in.header_check ? error_message(in.header_check) : "ok");
  const char* const labels[4] = {"header CRC:", "text CRC:", "payload CRC:", "sections CRC:"};
  const std::array<crc_report, 4> reports = crc_reports(in);
  for (std::size_t i = 0; i < 4; ++i) {
    const crc_report& r = reports[i];
    switch (r.status) {
      case crc_status::absent:
        line(labels[i], "none (" + r.note + ")");
        break;
      case crc_status::ok:
        line(labels[i], hex32(r.stored) + " ok");
        break;
      case crc_status::mismatch:
        line(labels[i], hex32(r.stored) + " MISMATCH (computed " + hex32(*r.computed) + ")");
        break;
      case crc_status::not_checked:
        line(labels[i], hex32(r.stored) + " not checked (" + r.note + ")");
        break;
    }
  }
  // Appended data is shown as parsed; it is trustworthy only when the
  // verdict below is ok.
  const std::string unverified = in.o.err ? " (unverified)" : "";
  if (!(h.ext_flags & kvc::ext::tool_map)) {
    line("tool map:", "none");
  } else if (!info.has_tool_map) {
    line("tool map:", "not read (verification stopped before it)");
  } else {
    line("tool map:",
         std::to_string(info.tools.size()) + (info.tools.size() == 1 ? " entry" : " entries") + unverified);
    for (const kvc::tool_entry& t : info.tools)
      std::printf("  id %s, DSML %s\n", quoted(t.id).c_str(), size_text(t.dsml.size()).c_str());
  }
  if (!(h.ext_flags & kvc::ext::title))
    line("title:", "none");
  else if (in.title_error)
    line("title:", "absent: " + describe(in.title_error));
  else if (!in.title_read)
    line("title:", "not read (verification stopped before it)");
  else
    line("title:", quoted(info.title) + unverified);
  if (h.ext_flags & ~kvc::ext::known)
    line("unknown sections:", "yes (bits 4..7 set: opaque bytes after the known sections)");
  if (in.dsv4) {
    std::string fields;
    for_each_dsv4_field(*in.dsv4, [&](const char* name, std::uint32_t v) {
      if (std::strcmp(name, "magic") != 0)
        fields += std::string(fields.empty() ? "" : ", ") + name + " " + std::to_string(v);
    });
    line("DSV4 payload:", fields);
    if (in.dsv4_model != nullptr) line("DSV4 check:", std::string("ok (model ") + in.dsv4_model + ")");
  } else if (h.payload_bytes < kvc::layout::dsv4::size) {
    line("DSV4 payload:", "no (payload shorter than 52 bytes)");
  } else {
    line("DSV4 payload:",
         in.dsv4_in_file ? "no (payload does not start with DSV4)" : "not read (payload not in the file)");
  }
  switch (in.o.identity) {
    case identity_status::not_identity_name:
      line("identity:", "not an identity name");
      break;
    case identity_status::ok:
      line("identity:", "ok");
      break;
    case identity_status::mismatch:
      line("identity:", "MISMATCH (expected " + in.o.expected_name.value_or("?") + ")");
      break;
    case identity_status::not_checked:
      line("identity:", "not checked (file did not verify)");
      break;
  }
  line("verdict:", in.o.err ? describe(in.o.err) : "ok (v" + std::to_string(h.version) + ", full)");
}

}  // namespace

int cmd_inspect(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "inspect: no FILE given");
  bool any_io = false, any_failed = false;
  for (std::size_t i = 0; i < a.operands.size(); ++i) {
    const std::string& path = a.operands[i];
    inspection in;
    if (!inspect_file(path, a, in)) {
      any_io = true;
      file_error(path, io_problem_text(in.o));
      if (a.json) print_inspection_json(path, in);
      continue;
    }
    any_failed = any_failed || in.o.err;
    if (a.json) {
      print_inspection_json(path, in);
    } else {
      if (i > 0) std::printf("\n");
      print_inspection_text(path, in);
    }
  }
  return status_of(any_io, any_failed);
}

}  // namespace kvc_tool
