/* c_engine.c - what a C inference engine does with kvc, through kvc/kvc.h:
 * save a checkpoint layer by layer, verify it, load it with staged commit,
 * touch it after a cache hit, and upgrade a version 1 file.
 *
 *   c_engine DIR     (writes DIR/session.kv and DIR/old.kv)
 *
 * Built as C99 (-std=c99 -Wall -Wextra -Werror -pedantic) and linked with
 * kvc::c; tests/cli/c_engine_test.sh checks its output and its files with
 * the independent reference reader. */
#include <kvc/kvc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAYERS 4u
#define LAYER_BYTES 65536u
#define CREATED_AT 1700000000u

/* Stands in for one layer of KV state as the engine produces it. */
static void fill_layer(uint8_t* buf, unsigned layer) {
  unsigned i;
  for (i = 0; i < LAYER_BYTES; ++i) buf[i] = (uint8_t)((i * 31u + layer * 7u) & 0xFFu);
}

static int fail(const char* what, const kvc_error* e) {
  fprintf(stderr, "c_engine: %s: %s in %s at offset %llu (%s, os error %d)\n", what, kvc_errc_name(e->code),
          kvc_section_name(e->section), (unsigned long long)e->offset, kvc_errc_message(e->code), (int)e->os_error);
  return 1;
}

static int save_session(const char* path, uint8_t* layer) {
  static const char text[] = "<|User|>Hello<|Assistant|>";
  kvc_tool_entry tool;
  kvc_appended sections;
  kvc_header h, stored;
  kvc_writer* w;
  kvc_error e;
  uint32_t crc = 0;
  unsigned l;

  kvc_header_init(&h); /* version 2: every CRC is computed as the bytes go out */
  h.tokens = 3;
  h.context = 4096;
  h.save_reason = 1; /* cold */
  h.created_at = h.last_used = CREATED_AT;
  if (kvc_writer_begin(path, &h, text, sizeof text - 1, &w, &e) != KVC_ERR_OK) return fail("begin", &e);
  for (l = 0; l < LAYERS; ++l) {
    fill_layer(layer, l);
    crc = kvc_crc32c_extend(crc, layer, LAYER_BYTES);
    if (kvc_writer_write(w, layer, LAYER_BYTES, &e) != KVC_ERR_OK) {
      kvc_writer_abort(w); /* removes the temporary; path is untouched */
      return fail("write", &e);
    }
  }
  tool.id = "call_1";
  tool.id_size = strlen(tool.id);
  tool.dsml = "<tool_call>get_time</tool_call>";
  tool.dsml_size = strlen(tool.dsml);
  sections.tools = &tool;
  sections.tool_count = 1;
  sections.title = "demo session";
  sections.title_size = strlen(sections.title);
  if (kvc_writer_finish(w, &sections, &stored, &e) != KVC_ERR_OK) return fail("finish", &e);
  printf("saved: version %u, %llu payload bytes, payload crc 0x%08lx (%s)\n", (unsigned)stored.version,
         (unsigned long long)stored.payload_bytes, (unsigned long)stored.payload_crc,
         stored.payload_crc == crc ? "matches the running crc" : "DIFFERS from the running crc");
  return stored.payload_crc == crc ? 0 : 1;
}

static int verify_session(const char* path, kvc_info* info) {
  const kvc_facts* f;
  const char* title;
  size_t title_size = 0;
  char name[KVC_IDENTITY_NAME_SIZE + 1];
  kvc_error e;

  if (kvc_verify_file(path, NULL, info, &e) != KVC_ERR_OK) return fail("verify", &e);
  f = kvc_info_facts(info);
  title = kvc_info_title(info, &title_size);
  if (kvc_identity_name(info, name, &e) != KVC_ERR_OK) return fail("identity", &e);
  printf("verified: tokens %lu, %lu tool ids, title \"%.*s\", identity %s\n", (unsigned long)f->header.tokens,
         (unsigned long)f->tool_count, (int)title_size, title, name);
  return 0;
}

/* Staged commit (spec "Restoring state"): the payload goes to staging
 * memory, and becomes the live state only when the load succeeded. */
static int load_session(const char* path, kvc_info* info, uint8_t* layer) {
  kvc_load* load;
  uint8_t* staging;
  uint64_t size;
  unsigned l;
  kvc_error e;

  if (kvc_load_open(path, NULL, info, &load, &e) != KVC_ERR_OK) return fail("load header and text", &e);
  size = kvc_info_facts(info)->header.payload_bytes;
  if (size != (uint64_t)LAYERS * LAYER_BYTES) {
    kvc_load_close(load);
    fprintf(stderr, "c_engine: unexpected payload size %llu\n", (unsigned long long)size);
    return 1;
  }
  staging = (uint8_t*)malloc((size_t)size);
  if (staging == NULL) {
    kvc_load_close(load);
    return 1;
  }
  if (kvc_load_payload_into(load, staging, size, &e) != KVC_ERR_OK) {
    free(staging); /* discard: nothing reached the live state */
    kvc_load_close(load);
    return fail("load payload", &e);
  }
  kvc_load_close(load);
  for (l = 0; l < LAYERS; ++l) { /* the engine's commit; here, a comparison */
    fill_layer(layer, l);
    if (memcmp(staging + (size_t)l * LAYER_BYTES, layer, LAYER_BYTES) != 0) {
      free(staging);
      fprintf(stderr, "c_engine: layer %u differs after load\n", l);
      return 1;
    }
  }
  free(staging);
  printf("loaded: %llu payload bytes, committed after every CRC matched\n", (unsigned long long)size);
  return 0;
}

/* kvc_save_file's producer: the payload of the version 1 file. */
static int32_t produce_v1(void* ctx, kvc_writer* w) {
  uint8_t* layer = (uint8_t*)ctx;
  unsigned l;
  for (l = 0; l < LAYERS; ++l) {
    int32_t code;
    fill_layer(layer, l);
    code = kvc_writer_write(w, layer, LAYER_BYTES, NULL);
    if (code != KVC_ERR_OK) return code;
  }
  return KVC_ERR_OK;
}

static int upgrade_old(const char* path, uint8_t* layer) {
  static const char text[] = "<|User|>Hello<|Assistant|>";
  kvc_header h, stored;
  kvc_error e;

  kvc_header_init(&h);
  h.version = 1;
  h.tokens = 3;
  h.context = 4096;
  h.created_at = h.last_used = CREATED_AT;
  if (kvc_save_file(path, &h, text, sizeof text - 1, NULL, produce_v1, layer, &stored, &e) != KVC_ERR_OK)
    return fail("save v1", &e);
  if (kvc_upgrade_file(path, &stored, &e) != KVC_ERR_OK) return fail("upgrade", &e);
  printf("upgraded: version 1 to %u, payload crc 0x%08lx\n", (unsigned)stored.version,
         (unsigned long)stored.payload_crc);
  switch (kvc_check_compatible_file(path, text, sizeof text - 1, 2, 4096, &e)) {
    case KVC_COMPATIBLE:
      printf("compatible: same text, quant bits and context\n");
      return 0;
    case KVC_INCOMPATIBLE:
      printf("incompatible\n");
      return 1;
    default:
      return fail("compatibility check", &e);
  }
}

int main(int argc, char** argv) {
  char session[4096], old[4096];
  uint8_t* layer;
  kvc_info* info;
  kvc_header touched;
  kvc_error e;
  int failed;

  if (argc != 2) {
    fprintf(stderr, "usage: c_engine DIR\n");
    return 2;
  }
  snprintf(session, sizeof session, "%s/session.kv", argv[1]);
  snprintf(old, sizeof old, "%s/old.kv", argv[1]);
  layer = (uint8_t*)malloc(LAYER_BYTES);
  info = kvc_info_new();
  if (layer == NULL || info == NULL) return 1;
  printf("kvc %s, crc32c kernel %s\n", kvc_version(), kvc_crc32c_kernel_name());

  failed = save_session(session, layer) || verify_session(session, info) || load_session(session, info, layer);
  if (!failed) {
    if (kvc_touch_file(session, CREATED_AT + 100u, &touched, &e) != KVC_ERR_OK) {
      failed = fail("touch", &e);
    } else {
      printf("touched: hits %lu, last used %llu\n", (unsigned long)touched.hits, (unsigned long long)touched.last_used);
    }
  }
  if (!failed) failed = upgrade_old(old, layer);
  kvc_info_free(info);
  free(layer);
  return failed ? 1 : 0;
}
