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
 *
 * Conventions, for every function below:
 *   - A function that can fail returns a code from kvc_errc (KVC_ERR_OK is 0)
 *     and, when err is not NULL, fills *err with the code, the section, the
 *     byte offset and, for KVC_ERR_IO_ERROR, the OS error number (errno).
 *     The codes and sections are the spec's tables ("Errors"), value for
 *     value; each constant is the spec's name upper-cased behind KVC_ERR_ or
 *     KVC_SECTION_, and kvc_errc_name returns the spec's name exactly.
 *   - No C++ exception ever leaves a function. Handles are allocated without
 *     throwing; where the library is built with exceptions, an allocation
 *     failure inside a call is reported as KVC_ERR_IO_ERROR with os_error
 *     ENOMEM; built with -fno-exceptions, it ends the process as it does in
 *     the C++ library.
 *   - Memory: strings and views returned by a kvc_info accessor belong to
 *     that kvc_info and stay valid until its next use or kvc_info_free.
 *     Every other returned const char* is a static string: never free it.
 *     Handles (kvc_info, kvc_writer, kvc_load) are freed by their own
 *     _free/_abort/_close function, which accept NULL.
 *   - Path-level functions (kvc_verify_file, the writer, load, touch,
 *     rewrite, upgrade, the compatibility check) exist on POSIX systems and
 *     Windows.
 *
 * SPDX-License-Identifier: MIT */
#ifndef KVC_KVC_H
#define KVC_KVC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors (spec "Errors") --------------------------------------------- */

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
 * the start of the file; os_error is errno for KVC_ERR_IO_ERROR (0 when the
 * operating system gave none). */
typedef struct kvc_error {
  int32_t code;
  int32_t section;
  uint64_t offset;
  int32_t os_error;
} kvc_error;

/* The spec's name of a code or section ("unknown" outside the tables), and a
 * message for people. Static strings. */
const char* kvc_errc_name(int32_t code);
const char* kvc_errc_message(int32_t code);
const char* kvc_section_name(int32_t section);

/* The library version ("0.1.0"); a static string. */
const char* kvc_version(void);

/* ---- Header and reader settings ---------------------------------------- */

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

/* A header with the library's defaults: version 2, quant bits 2, payload ABI
 * 2, everything else 0. A writer derives the sizes, CRCs and section bits. */
void kvc_header_init(kvc_header* h);

enum kvc_level {
  KVC_LEVEL_HEADER = 0, /* the fixed header, sizes against the file */
  KVC_LEVEL_TEXT = 1,   /* and the text with its CRC */
  KVC_LEVEL_FULL = 2    /* every byte: payload, appended sections, CRCs */
};
const char* kvc_level_name(int32_t level); /* static string */

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
void kvc_model_deepseek_v4_flash(kvc_model_desc* m);

typedef struct kvc_read_options {
  int32_t level;                    /* kvc_level */
  kvc_limits limits;                /* defaults follow what ds4 accepts */
  const kvc_model_desc* dsv4_model; /* NULL: no DSV4 payload check */
  uint64_t chunk_bytes;             /* payload bytes per callback, 1 MiB */
} kvc_read_options;

/* Level full, the default limits, no DSV4 check, 1 MiB chunks. Passing NULL
 * for options anywhere means these. */
void kvc_read_options_init(kvc_read_options* opt);

/* ---- What a read found --------------------------------------------------- */

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
  KVC_STAGE_FULL = 5            /* and the appended sections: every byte checked */
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
 * when out of memory; free with kvc_info_free. */
typedef struct kvc_info kvc_info;
kvc_info* kvc_info_new(void);
void kvc_info_free(kvc_info* info);

/* Views into info, valid until its next read or kvc_info_free. The text and
 * title are not NUL-terminated; *size receives their length. kvc_info_title
 * returns NULL when the file has no title section; kvc_info_tool returns
 * KVC_ERR_INVALID_ARGUMENT when i >= tool_count. */
const kvc_facts* kvc_info_facts(const kvc_info* info);
const char* kvc_info_text(const kvc_info* info, size_t* size);
const char* kvc_info_title(const kvc_info* info, size_t* size);
int32_t kvc_info_tool(const kvc_info* info, size_t i, const char** id, size_t* id_size, const char** dsml,
                      size_t* dsml_size);

/* ---- Verification --------------------------------------------------------- */

/* Verifies the file at path at opt->level. info (may be NULL) receives what
 * the read found, also on failure (as far as the read got). */
int32_t kvc_verify_file(const char* path, const kvc_read_options* opt, kvc_info* info, kvc_error* err);

/* The same over bytes in memory (a mapped file, a network buffer). */
int32_t kvc_verify_memory(const void* data, size_t size, const kvc_read_options* opt, kvc_info* info, kvc_error* err);

/* ---- Saving ----------------------------------------------------------------- */

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
 * in any number of kvc_writer_write calls, the sections at kvc_writer_finish,
 * which fsyncs it, renames it over path and fsyncs the directory. Until then
 * path is untouched. h gives every field but the sizes, CRCs and section
 * bits. On success *out is a handle that kvc_writer_finish or
 * kvc_writer_abort frees; on failure *out is NULL and nothing is left on
 * disk. */
typedef struct kvc_writer kvc_writer;
int32_t kvc_writer_begin(const char* path, const kvc_header* h, const char* text, size_t text_size, kvc_writer** out,
                         kvc_error* err);

/* Appends payload bytes. After a failure the writer only accepts
 * kvc_writer_abort (kvc_writer_finish reports the same failure). */
int32_t kvc_writer_write(kvc_writer* w, const void* data, size_t size, kvc_error* err);

/* The length of an identity name, "<40 lowercase hex>.kv"; buffers for one
 * hold KVC_IDENTITY_NAME_SIZE + 1 bytes (the terminating NUL). */
#define KVC_IDENTITY_NAME_SIZE 43

/* What a path-level write left on disk, filled when the call succeeds (the
 * change is in place). unconfirmed.code is KVC_ERR_OK, or KVC_ERR_IO_ERROR
 * with os_error when a step after the change failed: the fsync that makes it
 * durable (a power loss may bring the old content back; after a failed fsync
 * written data may also have been dropped), or removing the old name after a
 * rename. renamed_to is "" unless kvc_rewrite_appended_file gave an
 * identity-named file the identity name of its new title: then it is that
 * name (NUL-terminated), in the same directory as the old one (for a path
 * that is a symbolic link: the directory of the file it led to). */
typedef struct kvc_stored {
  kvc_header header; /* as stored */
  kvc_error unconfirmed;
  char renamed_to[KVC_IDENTITY_NAME_SIZE + 1];
} kvc_stored;

/* Writes the sections (a may be NULL: none), settles the header and commits
 * the file; stored (may be NULL) receives what was stored. Frees w,
 * whatever the outcome; on failure the temporary is removed. */
int32_t kvc_writer_finish(kvc_writer* w, const kvc_appended* a, kvc_stored* stored, kvc_error* err);

/* Discards an unfinished save: removes the temporary, frees w. */
void kvc_writer_abort(kvc_writer* w);

/* The callback form of the same save: produce(ctx, w) writes the payload with
 * kvc_writer_write on the w it is given (kvc_save_file owns w: finishing or
 * aborting it is KVC_ERR_INVALID_ARGUMENT and does nothing; do not keep it)
 * and returns KVC_ERR_OK, or nonzero to abandon the save. The save then
 * fails with the failed write's error, else with that code (a kvc_errc;
 * other values become KVC_ERR_INVALID_ARGUMENT), section payload, offset 0. */
typedef int32_t (*kvc_produce_fn)(void* ctx, kvc_writer* w);
int32_t kvc_save_file(const char* path, const kvc_header* h, const char* text, size_t text_size, const kvc_appended* a,
                      kvc_produce_fn produce, void* ctx, kvc_stored* stored, kvc_error* err);

/* ---- Loading with staged commit (spec "Restoring state") ------------------- */

/* Stage 1: kvc_load_open reads and checks the header and the text (level
 * text) into info (not NULL, owned by the caller, which must keep it alive
 * until kvc_load_close) so the caller can decide whether to load and size
 * its staging memory from kvc_info_facts(info)->header.payload_bytes.
 * Stage 2: kvc_load_payload or kvc_load_payload_into reads the whole file
 * again at level full (the text is re-checked, so a file changed in between
 * is caught) and hands the payload over. The payload is staged: success
 * (KVC_ERR_OK) only when every CRC matched and the sections parsed; on any
 * failure the bytes already handed over must be discarded. info then holds
 * the level full facts (tool map, title). One stage 2 per handle. *out is
 * freed with kvc_load_close (NULL on failure). */
typedef struct kvc_load kvc_load;
int32_t kvc_load_open(const char* path, const kvc_read_options* opt, kvc_info* info, kvc_load** out, kvc_error* err);

/* consume(ctx, data, size) receives the payload in order, in chunks of at
 * most opt->chunk_bytes; data is valid during the call only. It returns
 * KVC_ERR_OK to go on, or nonzero to stop the load, which then fails with
 * that code (a kvc_errc; other values become KVC_ERR_INVALID_ARGUMENT),
 * section payload, at the file offset of the chunk. */
typedef int32_t (*kvc_payload_fn)(void* ctx, const uint8_t* data, size_t size);
int32_t kvc_load_payload(kvc_load* l, kvc_payload_fn consume, void* ctx, kvc_error* err);

/* Reads the payload straight into buf (capacity bytes, caller-owned): one
 * copy, each slice checksummed while it is in cache. A payload larger than
 * capacity is KVC_ERR_INVALID_ARGUMENT (section payload) before any payload
 * byte is read. buf holds the file's payload only when this returns
 * KVC_ERR_OK; on any error its bytes are partial or unverified. */
int32_t kvc_load_payload_into(kvc_load* l, void* buf, uint64_t capacity, kvc_error* err);
void kvc_load_close(kvc_load* l);

/* ---- In-place updates and checks ----------------------------------------- */

/* In each, stored (may be NULL) receives what was stored (kvc_stored). */

/* After a cache hit: hits + 1 (saturating), last_used = now; one header
 * write, fsynced. */
int32_t kvc_touch_file(const char* path, uint64_t now, kvc_stored* stored, kvc_error* err);

/* Replaces the sections after the payload (a may be NULL: none) and sets
 * last_used = now. A file with an identity name whose identity changes (a
 * new or removed title) is renamed to its new identity name
 * (stored->renamed_to); an existing file of that name is not replaced. */
int32_t kvc_rewrite_appended_file(const char* path, const kvc_appended* a, uint64_t now, kvc_stored* stored,
                                  kvc_error* err);

/* Upgrades a version 1 file to version 2 atomically; a version 2 file is
 * left alone. */
int32_t kvc_upgrade_file(const char* path, kvc_stored* stored, kvc_error* err);

enum kvc_compatibility { KVC_COMPATIBLE = 0, KVC_INCOMPATIBLE = 1, KVC_CORRUPT = 2 };

/* Whether the file at path can seed a conversation with this text, quant
 * bits and context (level text read). Returns a kvc_compatibility; for
 * KVC_CORRUPT, *err (may be NULL) says why. */
int32_t kvc_check_compatible_file(const char* path, const char* text, size_t text_size, uint8_t quant_bits,
                                  uint32_t context, kvc_error* err);

/* ---- Identity names (spec "File naming and identity") --------------------- */

/* The identity name of the file info describes, into out (KVC_IDENTITY_NAME_SIZE
 * + 1 bytes, NUL-terminated): from the title and created_at when extension
 * bit 3 is set (needs a level full read), else from the text (level text). */
int32_t kvc_identity_name(const kvc_info* info, char* out, kvc_error* err);
void kvc_identity_name_for_text(const char* text, size_t text_size, char* out);
void kvc_identity_name_for_title(const char* title, size_t title_size, uint64_t created_at, char* out);

/* 1 when name (NUL-terminated, no directory) has the identity form, else 0. */
int kvc_is_identity_name(const char* name);

/* KVC_ERR_IDENTITY_MISMATCH when path's file name has the identity form but
 * is not the identity of the file info describes; other names pass. */
int32_t kvc_check_identity(const char* path, const kvc_info* info, kvc_error* err);

/* ---- CRC32C (spec "CRC32C") ------------------------------------------------ */

uint32_t kvc_crc32c(const void* data, size_t size);
/* kvc_crc32c_extend(kvc_crc32c(A), B, |B|) == kvc_crc32c(A || B) */
uint32_t kvc_crc32c_extend(uint32_t crc, const void* data, size_t size);
/* kvc_crc32c(A || B) from kvc_crc32c(A), kvc_crc32c(B) and |B| */
uint32_t kvc_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);
/* The kernel in use ("portable", "sse42", ...); a static string. */
const char* kvc_crc32c_kernel_name(void);

#ifdef __cplusplus
}
#endif

#endif /* KVC_KVC_H */
