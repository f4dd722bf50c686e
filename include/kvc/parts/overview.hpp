// kvc.hpp - the KVC disk KV-cache file format, versions 1 and 2.
//
// Header-only, C++17, no dependencies beyond the standard library. Works with
// -fno-exceptions and -fno-rtti. Normative reference: spec/kvc.md.
//
// API OVERVIEW
//
//   Every fallible call returns kvc::error or kvc::result<T>, both
//   [[nodiscard]]; an error carries the spec's code (kvc::errc), the section
//   of the file, the byte offset and, for io_error, the OS error number.
//
//   Reading     kvc::read(stream, info, consume, opt) verifies a file at a
//               level (header, text, full, sections: all but the payload)
//               in one pass; consume(p, n) gets the payload in chunks and
//               may return kvc::error to stop. kvc::verify(stream, info,
//               opt[, progress]) checks without keeping the payload.
//               info.stage says how far the read got; info.computed holds
//               the CRC of each region it read.
//   Loading     kvc::load(stream, info, place, opt) / load_file(path, ...):
//               the payload straight into memory place(info) returns, one
//               copy, success only when every CRC matched.
//               kvc::payload_reader: open(), read(p, n) as the engine asks,
//               finish() for the verdict (pull reading).
//   Writing     kvc::begin_write(sink, header, text) -> writer (move-only);
//               w.write_payload(p, n) as often as needed; w.finish(sections).
//               begin_write_sequential for sinks that cannot seek.
//   Updating    kvc::touch, kvc::rewrite_appended, kvc::upgrade (v1 -> v2).
//   Checking    kvc::check_compatible(stream, text, reuse_rule) (ds4's
//               reuse rule), check_compatible_file, compatibility_name,
//               kvc::check_identity(path, info), identity_name.
//   Files       save_file or kvc::file_writer (begin, write_payload,
//               finish), read_file, verify_file, load_file, touch_file,
//               rewrite_appended_file, upgrade_file; *_open_file for a
//               descriptor the caller keeps; kvc::input_file (POSIX,
//               Windows). Atomic where they replace a file;
//               file_options::durability full (fsyncs) or cache (none);
//               file_options::in_place rewrites v2 sections in place.
//               kvc::file_source reads an open file: one fstat, one read
//               for a small file, a large payload in parts on
//               read_options::threads threads. error_text(e) for logs.
//   Caches      list_directory (headers, odd entries, temporaries),
//               find_prefixes (ds4's lookup), plan_eviction (ds4's
//               eviction), list_temporaries, remove_temporaries.
//   Layout      encode_/decode_/validate_ functions for every structure,
//               usable in constant expressions; layout:: byte tables;
//               for_each_field(header, f).
//   CRC32C      crc32c, crc32c_extend(crc, p, n), crc32c_combine,
//               crc32c_extend_zeros, crc32c_constexpr; crc32c_kernels() (a
//               range), crc32c_active_kernel, crc32c_force_kernel;
//               KVC_CRC32C=<kernel> in the environment.
//   SHA-1       kvc::sha1 (constexpr too); sha1_kernels(), sha1_active_kernel,
//               sha1_force_kernel; KVC_SHA1=<kernel>.
//   Streams     specialise kvc::stream_traits<S> (see "Streams"); adapters ship
//               for memory, std::vector/std::string, iostreams, FILE*, POSIX
//               file descriptors (kvc::fd_stream) and Windows handles
//               (kvc::win32_file).
//   C           include/kvc/kvc.h; its implementation is the "C interface"
//               part, compiled where KVC_C_IMPLEMENTATION is defined.
//
// CONFIGURATION
//
//   KVC_CORE_ONLY          define before including to get the format core
//                          alone: errors, layout, codec, the portable CRC32C
//                          and SHA-1, streams, reader, writer, updates.
//                          Standard headers only, no platform header, no
//                          intrinsics. Its CRC32C and SHA-1 use the CPU's
//                          kernels once any unit of the program includes the
//                          whole header (they register themselves), else the
//                          portable ones; it starts threads only then too.
//                          Including kvc.hpp again without it adds the rest.
//   KVC_CRC32C_NO_HW       build the portable CRC32C kernel only.
//   KVC_C_IMPLEMENTATION   compile the C interface (one C++ file).
//   No other macro and no compiler flag changes kvc: CPU features are
//   detected at run time. Everything lives in the inline namespace
//   kvc::KVC_ABI_NAMESPACE, named for the configuration, so translation units
//   configured differently can be linked into one program.
//   KVC_VERSION_MAJOR/MINOR/PATCH/STRING/NUMBER give the version.
//
// PARTS, in order (this file is generated from include/kvc/parts/ by
// cmake/amalgamate.cmake; edit the parts):
//   the format core: Errors; Layout (byte tables, field tables, structs);
//   CRC32C (portable kernel, combine, dispatch); Codec; SHA-1; Streams;
//   Reader; Writer; Updates and checks;
//   then: CPU kernels; Files (types); Platform (the contract), Platform:
//   POSIX, Platform: Windows; File operations; Cache directories; C
//   interface.
//
// SPDX-License-Identifier: MIT
