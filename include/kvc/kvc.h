/* kvc.h - the C interface of kvc (spec/kvc.md), for C engines and for
 * bindings from other languages (ctypes, cffi, Rust, Go).
 *
 * C99, also valid C++; no C++ type appears here. The implementation is the
 * C++ library itself, compiled once: in exactly one C++ file write
 *
 *     #define KVC_C_IMPLEMENTATION
 *     #include <kvc/kvc.hpp>
 *
 * (the define must come before the file's first include of kvc/kvc.hpp),
 * or link the CMake target kvc::c (pkg-config: kvc-c), which is that file.
 * A program linked by a C compiler needs the C++ runtime too (-lstdc++ with
 * GCC, -lc++ with libc++); pkg-config's kvc-c and kvc::c name it.
 *
 * Conventions, for every function below:
 *   - A function that can fail returns a code from kvc_errc (KVC_ERR_OK is 0)
 *     and, when err is not NULL, fills *err with the code, the section, the
 *     byte offset and, for KVC_ERR_IO_ERROR, the OS error number (errno, or
 *     GetLastError() on Windows). The codes and sections are the spec's
 *     tables ("Errors"), value for value; each constant is the spec's name
 *     upper-cased behind KVC_ERR_ or KVC_SECTION_. kvc_error_format makes one
 *     log line of an error. A NULL where an argument is required is
 *     KVC_ERR_INVALID_ARGUMENT. Functions that cannot fail (names, init,
 *     predicates, CRC32C) return their value.
 *   - Options structs (kvc_read_options, kvc_file_options, kvc_list_options)
 *     start with their size: fill them with their _init function, then set
 *     fields. A program built against an older kvc.h passes a smaller size
 *     and gets the defaults for the fields it does not know; fields a newer
 *     kvc.h added that this library does not know must be zero. NULL for
 *     options means the defaults.
 *   - No C++ exception ever leaves a function. Handles are allocated without
 *     throwing; where the library is built with exceptions, an allocation
 *     failure inside a call is reported as KVC_ERR_IO_ERROR with os_error
 *     ENOMEM; built with -fno-exceptions, it ends the process as it does in
 *     the C++ library.
 *   - Memory: strings and views returned by a kvc_info or kvc_dir accessor
 *     belong to that handle and stay valid until its next use or its _free.
 *     Every other returned const char* is a static string: never free it.
 *     Handles (kvc_info, kvc_writer, kvc_load, kvc_dir) are freed by their
 *     own function (_free, _finish or _abort, _close), which accept NULL.
 *   - Paths are UTF-8. Path- and file-level functions exist on POSIX systems
 *     and Windows.
 *
 * SPDX-License-Identifier: MIT */
#ifndef KVC_KVC_H
#define KVC_KVC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The version of this header; kvc_version_number() is the library's. */
#define KVC_VERSION_MAJOR 0
#define KVC_VERSION_MINOR 2
#define KVC_VERSION_PATCH 0
#define KVC_VERSION_STRING "0.2.0"
#define KVC_VERSION_NUMBER 200

/* Every function is KVC_API: nothing for a static library (the default);
 * for a shared one, define KVC_BUILD_SHARED where the implementation is
 * compiled and KVC_SHARED where it is used. */
#ifndef KVC_API
#if defined(KVC_BUILD_SHARED) || defined(KVC_SHARED)
#if defined(_WIN32)
#ifdef KVC_BUILD_SHARED
#define KVC_API __declspec(dllexport)
#else
#define KVC_API __declspec(dllimport)
#endif
#else
#define KVC_API __attribute__((visibility("default")))
#endif
#else
#define KVC_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors and version (spec "Errors") -------------------------------- */

enum kvc_errc {
  KVC_ERR_OK = 0,
  KVC_ERR_BAD_MAGIC = 1,
  KVC_ERR_UNSUPPORTED_VERSION = 2,
  KVC_ERR_FOREIGN_VARIANT = 3,
  KVC_ERR_HEADER_CRC_MISMATCH = 4,
  KVC_ERR_INVALID_QUANT_BITS = 5,
  KVC_ERR_ZERO_TOKENS = 6,
  KVC_ERR_RESERVED_NONZERO = 7,
  KVC_ERR_LENGTH_OVERFLOW = 8,
  KVC_ERR_LIMIT_EXCEEDED = 9,
  KVC_ERR_TRUNCATED = 10,
  KVC_ERR_TEXT_CRC_MISMATCH = 11,
  KVC_ERR_PAYLOAD_CRC_MISMATCH = 12,
  KVC_ERR_SECTIONS_CRC_MISMATCH = 13,
  KVC_ERR_MALFORMED_TOOL_MAP = 14,
  KVC_ERR_TRAILING_BYTES = 15,
  KVC_ERR_PAYLOAD_MALFORMED = 16,
  KVC_ERR_PAYLOAD_MISMATCH = 17,
  KVC_ERR_IDENTITY_MISMATCH = 18,
  KVC_ERR_IO_ERROR = 19,
  KVC_ERR_INVALID_ARGUMENT = 20
};

enum kvc_section {
  KVC_SECTION_NONE = 0,
  KVC_SECTION_HEADER = 1,
  KVC_SECTION_TEXT = 2,
  KVC_SECTION_PAYLOAD = 3,
  KVC_SECTION_APPENDED = 4,
  KVC_SECTION_TOOL_MAP = 5,
  KVC_SECTION_TITLE = 6,
  KVC_SECTION_NAME = 7
};

/* A failure: what (kvc_errc), where (kvc_section), at which byte offset from
 * the start of the file; os_error is the OS error number for
 * KVC_ERR_IO_ERROR (0 when the operating system gave none). */
typedef struct kvc_error {
  int32_t code;
  int32_t section;
  uint64_t offset;
  int32_t os_error;
} kvc_error;

/* The spec's name of a code or section ("unknown" outside the tables), and a
 * message for people. Static strings. */
KVC_API const char* kvc_errc_name(int32_t code);
KVC_API const char* kvc_errc_message(int32_t code);
KVC_API const char* kvc_section_name(int32_t section);

/* One line for a log: "ok", or "payload_crc_mismatch at offset 71
 * (payload)", with ": <the OS's words>" after an I/O error that has an OS
 * error number. Like snprintf: writes at most size bytes including the
 * terminating NUL (nothing when size is 0) and returns the length of the
 * whole line, so a return >= size means it was cut. */
KVC_API size_t kvc_error_format(const kvc_error* e, char* buf, size_t size);

/* The library's version: "0.2.0", and MAJOR * 10000 + MINOR * 100 + PATCH. */
KVC_API const char* kvc_version(void);
KVC_API uint32_t kvc_version_number(void);

/* ---- The fixed header (spec sections 4 to 6) -------------------------- */

/* The decoded fixed header of either version; fields are raw values. */
typedef struct kvc_header {
  uint64_t created_at;
  uint64_t last_used;
  uint64_t payload_bytes;
  uint32_t tokens;
  uint32_t hits;
  uint32_t context;
  uint32_t text_bytes;
  uint32_t header_crc; /* version 2 only, 0 in version 1 */
  uint32_t text_crc;
  uint32_t payload_crc;
  uint32_t sections_crc;
  uint8_t version;
  uint8_t quant_bits;
  uint8_t save_reason;
  uint8_t ext_flags;
  uint8_t model_id;
  uint8_t payload_abi;
  uint8_t reserved[3];
} kvc_header;

#define KVC_HEADER_V1_SIZE 52
#define KVC_HEADER_V2_SIZE 68 /* also the most header bytes any version needs */

/* A header with the library's defaults: version 2, quant bits 2, payload ABI
 * 2, everything else 0. A writer derives the sizes, CRCs and section bits. */
KVC_API void kvc_header_init(kvc_header* h);

/* The header size of a version (52 or 68), 0 for any other. The text starts
 * there; the payload at kvc_header_payload_offset, the appended sections at
 * kvc_header_sections_offset (0 for a NULL header). */
KVC_API size_t kvc_header_size(uint32_t version);
KVC_API uint64_t kvc_header_payload_offset(const kvc_header* h);
KVC_API uint64_t kvc_header_sections_offset(const kvc_header* h);

/* The stored fields of the header in bytes[0..size): only magic, version and
 * length are checked (a damaged header can still be shown). */
KVC_API int32_t kvc_header_decode(const void* bytes, size_t size, kvc_header* out, kvc_error* err);

/* Field limits a reader enforces (spec "Reader limits"). */
typedef struct kvc_limits {
  uint64_t max_text_bytes;
  uint64_t max_payload_bytes;
  uint64_t max_appended_bytes;
  uint32_t max_tool_entries;
  uint32_t max_tool_id_bytes;
  uint32_t max_tool_dsml_bytes;
  uint32_t max_title_bytes;
} kvc_limits;

/* The spec's header rules on a decoded header and its own bytes (the header
 * CRC, quant bits, token count, reserved bytes, lengths against limits, NULL
 * for the defaults, and against file_size unless it is KVC_UNKNOWN_SIZE). */
KVC_API int32_t kvc_header_validate(const kvc_header* h, const void* bytes, uint64_t file_size,
                                    const kvc_limits* limits, kvc_error* err);

/* h as stored bytes into out (capacity at least kvc_header_size(h->version));
 * *written (may be NULL) gets that size. Version 2 gets the header CRC the
 * other fields imply. */
KVC_API int32_t kvc_header_encode(const kvc_header* h, void* out, size_t capacity, size_t* written, kvc_error* err);

/* ---- Reading: options and what a read found --------------------------- */

enum kvc_level {
  KVC_LEVEL_HEADER = 0,  /* the fixed header, sizes against the file */
  KVC_LEVEL_TEXT = 1,    /* and the text with its CRC */
  KVC_LEVEL_FULL = 2,    /* every byte: payload, appended sections, CRCs */
  KVC_LEVEL_SECTIONS = 3 /* header, text and appended sections; the payload skipped */
};
KVC_API const char* kvc_level_name(int32_t level); /* static string */

/* The model a DSV4 payload was made for (spec "Model description"). name is
 * not read by the check; it may be NULL. */
typedef struct kvc_model_desc {
  const char* name;
  uint32_t layers;
  uint32_t head_dim;
  uint32_t indexer_dim;
  uint32_t vocab;
  uint32_t sliding_window;
  uint32_t uncompressed_layers;
  uint32_t even_ratio;
  uint32_t odd_ratio;
  uint32_t indexed_ratio;
} kvc_model_desc;

/* DeepSeek V4 Flash, the model ds4 serves. */
KVC_API void kvc_model_deepseek_v4_flash(kvc_model_desc* m);

typedef struct kvc_read_options {
  size_t size;                      /* sizeof(kvc_read_options), set by kvc_read_options_init */
  int32_t level;                    /* kvc_level */
  kvc_limits limits;                /* defaults follow what ds4 accepts */
  const kvc_model_desc* dsv4_model; /* NULL: no DSV4 payload check */
  uint64_t chunk_bytes;             /* payload bytes per piece handed over, 1 MiB */
  uint32_t threads;                 /* threads that read a large payload in parts, 1 */
  uint8_t keep_sections;            /* 0: the tool map is checked, not kept (bounded memory); 1 */
  uint8_t reserved[3];              /* 0 (so the struct ends without padding: a newer field is seen) */
} kvc_read_options;

/* Level full, the default limits, no DSV4 check, 1 MiB chunks, one thread,
 * sections kept. */
KVC_API void kvc_read_options_init(kvc_read_options* opt);

/* The DSV4 payload header, filled in when the DSV4 check ran and passed. */
typedef struct kvc_dsv4_header {
  uint32_t magic;
  uint32_t version;
  uint32_t context;
  uint32_t prefill_chunk;
  uint32_t raw_capacity;
  uint32_t raw_window;
  uint32_t comp_capacity;
  uint32_t tokens;
  uint32_t layers;
  uint32_t head_dim;
  uint32_t indexer_dim;
  uint32_t vocab;
  uint32_t raw_live;
} kvc_dsv4_header;

/* How far a read got (also on failure). */
enum kvc_stage {
  KVC_STAGE_NONE = 0,           /* nothing decoded: I/O error, bad magic or version, short header */
  KVC_STAGE_HEADER_DECODED = 1, /* header decoded */
  KVC_STAGE_HEADER = 2,         /* and valid */
  KVC_STAGE_TEXT = 3,           /* and the text read and checked */
  KVC_STAGE_PAYLOAD = 4,        /* and the payload */
  KVC_STAGE_FULL = 5,           /* and the appended sections: every byte checked */
  KVC_STAGE_SECTIONS = 6        /* level sections: header, text and sections checked */
};

/* Fixed-size facts of a read; fields past the stage reached stay 0. */
typedef struct kvc_facts {
  kvc_header header;
  uint64_t file_size; /* KVC_UNKNOWN_SIZE when the source gave none */
  uint32_t tool_count;
  uint8_t stage;            /* kvc_stage */
  uint8_t has_tool_map;     /* level full */
  uint8_t has_title;        /* level full */
  uint8_t unknown_sections; /* extension bits 4..7 set: opaque bytes follow */
  uint8_t dsv4_checked;     /* the DSV4 check ran and passed */
  kvc_dsv4_header dsv4;
} kvc_facts;

#define KVC_UNKNOWN_SIZE UINT64_MAX

/* Holds what a read found, including the text, tool map and title. Reusable
 * across reads (each read replaces the contents). kvc_info_new returns NULL
 * when out of memory. */
typedef struct kvc_info kvc_info;
KVC_API kvc_info* kvc_info_new(void);
KVC_API void kvc_info_free(kvc_info* info);

/* Views into info, valid until its next read or kvc_info_free. The text and
 * title are not NUL-terminated; *size receives their length. kvc_info_title
 * returns NULL when the file has no title section. kvc_info_facts returns
 * NULL for a NULL info. */
KVC_API const kvc_facts* kvc_info_facts(const kvc_info* info);
KVC_API const char* kvc_info_text(const kvc_info* info, size_t* size);
KVC_API const char* kvc_info_title(const kvc_info* info, size_t* size);
/* Tool map entry i (i < tool_count). */
KVC_API int32_t kvc_info_tool(const kvc_info* info, size_t i, const char** id, size_t* id_size, const char** dsml,
                              size_t* dsml_size, kvc_error* err);

/* An open file: a file descriptor on POSIX, a HANDLE on Windows. */
#ifdef _WIN32
typedef void* kvc_native_file;
#else
typedef int kvc_native_file;
#endif

/* ---- Verification ---------------------------------------------------------- */

/* Verifies at opt->level the file at path, the bytes in memory, or a file
 * the caller has open (read from its first byte; kvc neither closes it nor
 * moves its position). info (may be NULL) receives what the read found, also
 * on failure (as far as the read got). */
KVC_API int32_t kvc_verify_file(const char* path, const kvc_read_options* opt, kvc_info* info, kvc_error* err);
KVC_API int32_t kvc_verify_memory(const void* data, size_t size, const kvc_read_options* opt, kvc_info* info,
                                  kvc_error* err);
KVC_API int32_t kvc_verify_fd(kvc_native_file file, const kvc_read_options* opt, kvc_info* info, kvc_error* err);

/* ---- Path-level writes: options and outcome ---------------------------------- */

enum kvc_durability {
  KVC_DURABILITY_FULL = 0, /* fsync of the file and its directory: old or new even after a power loss */
  KVC_DURABILITY_CACHE = 1 /* no fsync (ds4's behaviour): after a power loss a version 2 file may also
                              be one every reader refuses (spec 14.3) */
};

enum kvc_hard_links {
  KVC_LINKS_REFUSE = 0, /* a file with several names is not replaced */
  KVC_LINKS_SPLIT = 1   /* this name gets the new file, the others keep the old one */
};

typedef struct kvc_file_options {
  size_t size;            /* sizeof(kvc_file_options), set by kvc_file_options_init */
  uint32_t new_file_mode; /* a file that did not exist: 0600 (umask applies; ignored on Windows) */
  int32_t hard_links;     /* kvc_hard_links */
  uint32_t threads;       /* >= 2: the payload CRC runs beside the writes; 1 */
  int32_t durability;     /* kvc_durability */
  uint8_t in_place;       /* kvc_rewrite_appended_file changes a v2 file where it is (spec 15.2); 0 */
  uint8_t reserved[7];    /* 0 (so the struct ends without padding: a newer field is seen) */
} kvc_file_options;

/* Mode 0600, hard links refused, one thread, full durability, not in place. */
KVC_API void kvc_file_options_init(kvc_file_options* opt);

/* The length of an identity name, "<40 lowercase hex>.kv"; buffers for one
 * hold KVC_IDENTITY_NAME_SIZE + 1 bytes (the terminating NUL). */
#define KVC_IDENTITY_NAME_SIZE 43

/* What a path-level write left on disk, filled when the call succeeds (the
 * change is in place). unconfirmed.code is KVC_ERR_OK, or KVC_ERR_IO_ERROR
 * with os_error when a step after the change failed: the fsync that makes it
 * durable (a power loss may bring the old content back; after a failed fsync
 * written data may also have been dropped), or removing the old name after a
 * rename. renamed_to is "" unless a title change gave an identity-named file
 * the identity name of its new title: then it is that name (NUL-terminated),
 * in the same directory as the old one (for a path that is a symbolic link:
 * the directory of the file it led to). */
typedef struct kvc_stored {
  kvc_header header; /* as stored */
  kvc_error unconfirmed;
  char renamed_to[KVC_IDENTITY_NAME_SIZE + 1];
} kvc_stored;

/* ---- Saving -------------------------------------------------------------------- */

typedef struct kvc_tool_entry {
  const char* id; /* 1..256 bytes */
  size_t id_size;
  const char* dsml; /* 1 byte..512 MiB */
  size_t dsml_size;
} kvc_tool_entry;

/* The sections written after the payload. A tool map is written only when
 * tool_count > 0; a title only when title is not NULL (title_size may be 0).
 * The library copies what it needs; the caller keeps ownership. */
typedef struct kvc_appended {
  const kvc_tool_entry* tools;
  size_t tool_count;
  const char* title;
  size_t title_size;
} kvc_appended;

/* Saves a checkpoint atomically (spec "Atomic replacement"): a temporary file
 * next to path receives the header and text at kvc_writer_begin, the payload
 * in any number of kvc_writer_write calls (or through kvc_writer_file), the
 * sections at kvc_writer_finish, which fsyncs it (full durability), renames
 * it over path and fsyncs the directory. Until then path is untouched. h
 * gives every field but the sizes, CRCs and section bits. opt may be NULL.
 * On success *out is a handle that kvc_writer_finish or kvc_writer_abort
 * frees; on failure *out is NULL and nothing is left on disk. */
typedef struct kvc_writer kvc_writer;
KVC_API int32_t kvc_writer_begin(const char* path, const kvc_header* h, const char* text, size_t text_size,
                                 const kvc_file_options* opt, kvc_writer** out, kvc_error* err);

/* Appends payload bytes. After a failure the writer only accepts
 * kvc_writer_abort (kvc_writer_finish reports the same failure). */
KVC_API int32_t kvc_writer_write(kvc_writer* w, const void* data, size_t size, kvc_error* err);

/* A stdio stream that appends what is written to it as payload, for a
 * serializer that writes to a FILE*; one per writer, opened on the first
 * call. fclose it (which flushes it) before kvc_writer_finish; a failed write
 * shows as an fwrite/fclose error, and kvc_writer_finish reports it. A stream
 * still open at kvc_writer_finish may hold payload bytes in its buffer: the
 * save is refused (KVC_ERR_INVALID_ARGUMENT, section payload) and the stream
 * detached, so that closing it afterwards does no harm. NULL
 * where the C library cannot make one (glibc and musl have fopencookie;
 * macOS and the BSDs have funopen, written for and not compiled here;
 * Windows has neither): write with kvc_writer_write there. */
KVC_API FILE* kvc_writer_file(kvc_writer* w);

/* The path of the temporary file w is filling (removed if the save fails or
 * is abandoned), so that an engine can count it against its disk budget. */
KVC_API const char* kvc_writer_temporary(const kvc_writer* w);

/* Writes the sections (a may be NULL: none), settles the header and commits
 * the file; stored (may be NULL) receives what was stored. Frees w,
 * whatever the outcome; on failure the temporary is removed. */
KVC_API int32_t kvc_writer_finish(kvc_writer* w, const kvc_appended* a, kvc_stored* stored, kvc_error* err);

/* Discards an unfinished save: removes the temporary, frees w. */
KVC_API void kvc_writer_abort(kvc_writer* w);

/* ---- Loading with staged commit (spec "Restoring state") ------------------- */

/* kvc_load_open reads and checks the header and the text (level text) of the
 * file at path, or of a file the caller has open, into info (not NULL, kept
 * alive by the caller until kvc_load_close), so the caller can decide
 * whether to load and size its scratch memory from
 * kvc_info_facts(info)->header.payload_bytes. Then the payload: in pieces
 * with kvc_load_read (or through kvc_load_file), or at once with
 * kvc_load_read_all; then kvc_load_finish reads what is left of the payload
 * (checked, not kept) and gives the verdict on the whole file: payload CRC,
 * DSV4 check, appended sections (info then holds the tool map and title).
 * The bytes handed over are staged: restore into scratch state and commit it
 * only when kvc_load_finish returns KVC_ERR_OK. The file stays open, under a
 * shared lock (path form), until kvc_load_close. An error is final: every
 * later call returns it; *out is NULL on failure. */
typedef struct kvc_load kvc_load;
KVC_API int32_t kvc_load_open(const char* path, const kvc_read_options* opt, kvc_info* info, kvc_load** out,
                              kvc_error* err);
KVC_API int32_t kvc_load_open_fd(kvc_native_file file, const kvc_read_options* opt, kvc_info* info, kvc_load** out,
                                 kvc_error* err);

/* Up to capacity next payload bytes into buf; *got (not NULL) receives how
 * many, 0 once the payload has been read whole. A NULL buf or a capacity of
 * 0, which could not tell more bytes from the end, is
 * KVC_ERR_INVALID_ARGUMENT (final, like every error of a load). */
KVC_API int32_t kvc_load_read(kvc_load* l, void* buf, size_t capacity, size_t* got, kvc_error* err);

/* The whole payload into buf, before any kvc_load_read: one copy, in parts on
 * opt->threads threads for a large file. A payload larger than capacity is
 * KVC_ERR_INVALID_ARGUMENT (section payload) before any byte is read. */
KVC_API int32_t kvc_load_read_all(kvc_load* l, void* buf, uint64_t capacity, kvc_error* err);

/* A stdio stream that reads the payload (end of file at its end), for a
 * deserializer that reads from a FILE*; one per load, opened on the first
 * call; fclose it before kvc_load_close. A read error shows as ferror(); the
 * verdict is kvc_load_finish's. A stream still open at kvc_load_close is
 * detached: its reads fail, its fclose does no harm. NULL where the C library
 * cannot make one (see kvc_writer_file). */
KVC_API FILE* kvc_load_file(kvc_load* l);

KVC_API int32_t kvc_load_finish(kvc_load* l, kvc_error* err);
KVC_API void kvc_load_close(kvc_load* l);

/* ---- In-place updates and checks ----------------------------------------- */

/* In each, opt may be NULL (the defaults) and stored (may be NULL) receives
 * what was stored (kvc_stored). */

/* After a cache hit: hits + 1 (saturating), last_used = now; one header
 * write under the file's lock, fsynced with full durability. The _fd form
 * works on a file the caller has open for reading and writing. */
KVC_API int32_t kvc_touch_file(const char* path, uint64_t now, const kvc_file_options* opt, kvc_stored* stored,
                               kvc_error* err);
KVC_API int32_t kvc_touch_fd(kvc_native_file file, uint64_t now, const kvc_file_options* opt, kvc_stored* stored,
                             kvc_error* err);

/* What to do with one section: keep it, replace it, or remove it. */
enum kvc_change { KVC_KEEP = 0, KVC_REPLACE = 1, KVC_REMOVE = 2 };

/* Changes to a file's appended sections, one section at a time. */
typedef struct kvc_appended_changes {
  int32_t tool_map; /* KVC_KEEP, KVC_REPLACE (with tools; none when tool_count is 0) or KVC_REMOVE */
  const kvc_tool_entry* tools;
  size_t tool_count;
  int32_t title; /* KVC_KEEP, KVC_REPLACE (with title_text, not NULL; "" for an empty title) or KVC_REMOVE */
  const char* title_text;
  size_t title_size;
} kvc_appended_changes;

/* Changes the sections after the payload as c says and sets last_used = now:
 * through a temporary (old or new, whatever happens), or with opt->in_place
 * where the file is (version 2; spec 15.2). A file with an identity name
 * whose identity changes (a new or removed title) is renamed to its new
 * identity name (stored->renamed_to), never over a file of that name. */
KVC_API int32_t kvc_rewrite_appended_file(const char* path, const kvc_appended_changes* c, uint64_t now,
                                          const kvc_file_options* opt, kvc_stored* stored, kvc_error* err);

/* Upgrades a version 1 file to version 2 atomically; a version 2 file is
 * left alone. */
KVC_API int32_t kvc_upgrade_file(const char* path, const kvc_file_options* opt, kvc_stored* stored, kvc_error* err);

enum kvc_compatibility { KVC_COMPATIBLE = 0, KVC_INCOMPATIBLE = 1, KVC_CORRUPT = 2 };

/* ds4's reuse rule (spec 16): whether the file can seed a conversation with
 * this text in a session of this context: the same text, a context not above
 * the session's, and, unless quant_bits is 0, the same quant bits. Reads at
 * level text. *verdict (not NULL) gets a kvc_compatibility; the return is
 * KVC_ERR_OK when the file could be judged, else the error that makes it
 * KVC_CORRUPT. */
KVC_API int32_t kvc_check_compatible_file(const char* path, const char* text, size_t text_size, uint32_t context,
                                          uint8_t quant_bits, int32_t* verdict, kvc_error* err);
KVC_API int32_t kvc_check_compatible_fd(kvc_native_file file, const char* text, size_t text_size, uint32_t context,
                                        uint8_t quant_bits, int32_t* verdict, kvc_error* err);

/* ---- Identity names (spec "File naming and identity") --------------------- */

/* Identity names into out (KVC_IDENTITY_NAME_SIZE + 1 bytes, NUL-terminated):
 * of the file info describes (from the title and created_at when extension
 * bit 3 is set, which needs a level full read; else from the text), of a
 * text, or of a title and creation time. */
KVC_API int32_t kvc_identity_name(const kvc_info* info, char* out, kvc_error* err);
KVC_API int32_t kvc_identity_name_for_text(const char* text, size_t text_size, char* out, kvc_error* err);
KVC_API int32_t kvc_identity_name_for_title(const char* title, size_t title_size, uint64_t created_at, char* out,
                                            kvc_error* err);

/* 1 when name (NUL-terminated, no directory) has the identity form, else 0. */
KVC_API int kvc_is_identity_name(const char* name);

/* KVC_ERR_IDENTITY_MISMATCH when path's file name has the identity form but
 * is not the identity of the file info describes; other names pass. */
KVC_API int32_t kvc_check_identity(const char* path, const kvc_info* info, kvc_error* err);

/* ---- Cache directories (spec 9.1) ------------------------------------------ */

enum kvc_entry_kind {
  KVC_ENTRY_CACHE_FILE = 0,       /* "*.kv", a regular file (or a link to one): its header was read */
  KVC_ENTRY_TEMPORARY = 1,        /* "<name>.kv.tmp.*": a save in progress, or left by a crash */
  KVC_ENTRY_DANGLING_SYMLINK = 2, /* the rest are "*.kv" entries that are not cache files */
  KVC_ENTRY_SYMLINK_LOOP = 3,
  KVC_ENTRY_DIRECTORY = 4,
  KVC_ENTRY_NOT_REGULAR_FILE = 5,
  KVC_ENTRY_UNREADABLE = 6
};
KVC_API const char* kvc_entry_kind_name(int32_t kind); /* static string */

/* One entry of a listing; strings NUL-terminated, text_head and title also
 * sized (NULL title: none). */
typedef struct kvc_entry {
  const char* name;
  const char* path;
  int32_t kind; /* kvc_entry_kind */
  uint8_t symlink;
  uint8_t header_decoded; /* cache files: header holds the stored fields */
  uint64_t file_size;
  int64_t modified_unix; /* temporaries */
  int32_t os_error;      /* KVC_ENTRY_UNREADABLE */
  kvc_error error;       /* cache files: the level header verdict */
  kvc_header header;
  const char* text_head; /* the text's first bytes, unverified */
  size_t text_head_size;
  const char* title; /* unverified; with kvc_list_options.titles */
  size_t title_size;
} kvc_entry;

typedef struct kvc_list_options {
  size_t size;              /* sizeof(kvc_list_options), set by kvc_list_options_init */
  kvc_limits limits;        /* for the header checks */
  uint32_t text_head_bytes; /* text bytes kept per cache file: 0 */
  uint8_t titles;           /* read titles: 0 */
  uint8_t names_only;       /* 1: cache files are named and typed, not opened (no header): 0 */
  uint8_t reserved[2];      /* 0 (so the struct ends without padding: a newer field is seen) */
} kvc_list_options;
KVC_API void kvc_list_options_init(kvc_list_options* opt);

/* The entries of dir named "*.kv" (each cache file's header read at level
 * header: an open, an fstat, a read and a close), its temporaries, by name.
 * Free with kvc_dir_free. */
typedef struct kvc_dir kvc_dir;
KVC_API int32_t kvc_dir_list(const char* dir, const kvc_list_options* opt, kvc_dir** out, kvc_error* err);
KVC_API size_t kvc_dir_count(const kvc_dir* d);
KVC_API const kvc_entry* kvc_dir_entry(const kvc_dir* d, size_t i); /* NULL when i >= count */
KVC_API void kvc_dir_free(kvc_dir* d);

#define KVC_NO_ENTRY SIZE_MAX

/* ds4's lookup: the entry of d to load for a rendered prompt, or
 * KVC_NO_ENTRY: the longest text (ties: more tokens) whose file is named
 * by the SHA-1 of the prompt's first text_bytes bytes, not saved for a
 * larger context, with at least min_tokens tokens and, unless quant_bits is
 * 0, the same quant bits, whose text verifies and is the prompt's prefix. */
KVC_API int32_t kvc_dir_find_prefix(const kvc_dir* d, const char* prompt, size_t prompt_size, uint32_t context,
                                    uint8_t quant_bits, uint32_t min_tokens, size_t* index, kvc_error* err);

/* ds4's eviction score of a cache file (lowest is evicted first). */
KVC_API double kvc_eviction_score(const kvc_header* h, uint64_t file_size, uint64_t now, double half_life_seconds);

/* The cache files ds4 deletes, in order, to bring d's within budget_bytes
 * (now 0: the clock; half_life_seconds 0: ds4's 6 hours; protect: a file
 * name kept unless it alone exceeds the budget, may be NULL): indexes into
 * order[0..capacity), their number into *count. More than capacity:
 * KVC_ERR_INVALID_ARGUMENT with *count the number needed. */
KVC_API int32_t kvc_dir_plan_eviction(const kvc_dir* d, uint64_t budget_bytes, uint64_t now, double half_life_seconds,
                                      const char* protect, size_t* order, size_t capacity, size_t* count,
                                      kvc_error* err);

/* Removes the temporaries in dir last modified at least min_age_seconds ago;
 * *removed (may be NULL) gets how many. */
KVC_API int32_t kvc_remove_temporaries(const char* dir, uint64_t min_age_seconds, uint64_t* removed, kvc_error* err);

/* ---- CRC32C (spec "CRC32C") ------------------------------------------------ */

KVC_API uint32_t kvc_crc32c(const void* data, size_t size);
/* kvc_crc32c_extend(kvc_crc32c(A), B, |B|) == kvc_crc32c(A || B) */
KVC_API uint32_t kvc_crc32c_extend(uint32_t crc, const void* data, size_t size);
/* kvc_crc32c(A || B) from kvc_crc32c(A), kvc_crc32c(B) and |B| */
KVC_API uint32_t kvc_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);
/* The kernel in use ("portable", "sse42", ...); a static string. */
KVC_API const char* kvc_crc32c_kernel_name(void);

#ifdef __cplusplus
}
#endif

#endif /* KVC_KVC_H */
