/* engine_cache.c - a C engine's checkpoint cache over kvc.h: what a C engine
 * such as ds4 would copy. The engine's serializer writes its session state
 * to a FILE* and its deserializer reads it from one (ds4's
 * ds4_session_save_payload / ds4_session_load_payload); everything else is
 * kvc's: the directory listing from the headers, ds4's lookup of the longest
 * cached prefix, the save (a temporary renamed into place), the staged load
 * (scratch state committed only when every CRC matched), the hit, the tool
 * map replaced in place keeping the title, ds4's eviction to a byte budget,
 * the removal of stale temporaries, and one log line per failure.
 *
 *   engine_cache DIR NOW      (NOW: the clock, Unix seconds)
 *
 * C99; tests/cli/engine_cache_test.sh checks its output and its files with
 * the independent reference reader. */
#include <kvc/kvc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The engine's side: its serializer and deserializer (stand-ins) ---- */

static unsigned char state_byte(unsigned seed, size_t i) { return (unsigned char)((i * 31u + seed * 7u) & 0xFFu); }

static int session_save(FILE* fp, unsigned seed, size_t bytes) {
  size_t i;
  for (i = 0; i < bytes; ++i)
    if (fputc(state_byte(seed, i), fp) == EOF) return -1;
  return 0;
}

static int session_load(FILE* fp, unsigned char* scratch, size_t bytes) {
  return fread(scratch, 1, bytes, fp) == bytes ? 0 : -1;
}

/* ---- The cache ---- */

typedef struct cache {
  const char* dir;
  uint64_t budget; /* bytes */
  uint32_t context;
  uint64_t now;
} cache;

static int logged(const char* what, const char* path, const kvc_error* e) {
  char line[512];
  kvc_error_format(e, line, sizeof line);
  fprintf(stderr, "cache: %s %s: %s\n", what, path, line);
  return 1;
}

static void cache_path(const cache* c, const char* name, char* out, size_t size) {
  snprintf(out, size, "%s/%s", c->dir, name);
}

/* Without fopencookie/funopen (Windows) the state goes through the writer
 * and the load in pieces instead of a FILE*. */
static int save_state(kvc_writer* w, unsigned seed, size_t bytes) {
  unsigned char piece[4096];
  size_t done, i;
  FILE* fp = kvc_writer_file(w);
  if (fp != NULL) return session_save(fp, seed, bytes) == 0 && fclose(fp) == 0 ? 0 : -1;
  for (done = 0; done < bytes; done += i) {
    for (i = 0; i < sizeof piece && done + i < bytes; ++i) piece[i] = state_byte(seed, done + i);
    if (kvc_writer_write(w, piece, i, NULL) != KVC_ERR_OK) return -1;
  }
  return 0;
}

static int load_state(kvc_load* l, unsigned char* scratch, size_t bytes) {
  size_t done = 0, got = 1;
  FILE* fp = kvc_load_file(l);
  if (fp != NULL) return session_load(fp, scratch, bytes) == 0 && fclose(fp) == 0 ? 0 : -1;
  while (done < bytes && got != 0)
    if (kvc_load_read(l, scratch + done, bytes - done, &got, NULL) != KVC_ERR_OK) return -1;
    else done += got;
  return done == bytes ? 0 : -1;
}

/* Evicts, in ds4's order, until the cache fits its budget; protect (a file
 * name, may be NULL) goes only when it alone is over the budget. */
static int cache_evict(const cache* c, const char* protect) {
  kvc_dir* d;
  size_t order[64], count, i;
  kvc_error e;
  if (kvc_dir_list(c->dir, NULL, &d, &e) != KVC_ERR_OK) return logged("list", c->dir, &e);
  if (kvc_dir_plan_eviction(d, c->budget, c->now, 0, protect, order, 64, &count, &e) != KVC_ERR_OK)
    return kvc_dir_free(d), logged("plan eviction", c->dir, &e);
  for (i = 0; i < count; ++i) {
    const kvc_entry* victim = kvc_dir_entry(d, order[i]);
    if (remove(victim->path) == 0) printf("evicted %s (%llu bytes)\n", victim->name, (unsigned long long)victim->file_size);
  }
  kvc_dir_free(d);
  return 0;
}

/* Saves the session under its identity name (of its title when it has one,
 * else of its text), then keeps the budget. */
static int cache_save(const cache* c, const char* text, uint32_t tokens, unsigned seed, size_t bytes,
                      const kvc_appended* sections, char* path, size_t size) {
  char name[KVC_IDENTITY_NAME_SIZE + 1];
  kvc_header h;
  kvc_file_options opt;
  kvc_writer* w;
  kvc_error e;
  const int titled = sections != NULL && sections->title != NULL;
  if ((titled ? kvc_identity_name_for_title(sections->title, sections->title_size, c->now, name, &e)
              : kvc_identity_name_for_text(text, strlen(text), name, &e)) != KVC_ERR_OK)
    return logged("name", text, &e);
  cache_path(c, name, path, size);
  kvc_header_init(&h); /* version 2: a torn or partial file is refused, never restored */
  h.tokens = tokens;
  h.context = c->context;
  h.created_at = h.last_used = c->now;
  kvc_file_options_init(&opt);
  opt.durability = KVC_DURABILITY_CACHE; /* no fsync: a cache, as ds4 keeps it */
  if (kvc_writer_begin(path, &h, text, strlen(text), &opt, &w, &e) != KVC_ERR_OK) return logged("save", path, &e);
  if (save_state(w, seed, bytes) != 0) {
    kvc_writer_abort(w); /* removes the temporary */
    fprintf(stderr, "cache: save %s: the serializer failed\n", path);
    return 1;
  }
  if (kvc_writer_finish(w, sections, NULL, &e) != KVC_ERR_OK) return logged("save", path, &e);
  printf("saved %s (%u tokens)\n", name, (unsigned)tokens);
  return cache_evict(c, name);
}

/* Restores the longest cached prefix of prompt into *state (the caller
 * frees it): scratch state, committed only when every CRC matched, then the
 * hit recorded. A file that fails to load is removed. Returns its tokens, 0
 * when nothing matched, -1 on a failure. */
static long cache_restore(const cache* c, const char* prompt, unsigned char** state, char* hit_path, size_t size) {
  kvc_dir* d;
  kvc_info* info = kvc_info_new();
  kvc_load* l = NULL;
  kvc_file_options opt;
  kvc_error e = {KVC_ERR_OK, 0, 0, 0};
  size_t i;
  long tokens = -1;
  unsigned char* scratch = NULL;
  int loaded;
  if (info == NULL) return -1;
  if (kvc_dir_list(c->dir, NULL, &d, &e) != KVC_ERR_OK) return kvc_info_free(info), logged("list", c->dir, &e), -1;
  if (kvc_dir_find_prefix(d, prompt, strlen(prompt), c->context, 0, 0, &i, &e) != KVC_ERR_OK || i == KVC_NO_ENTRY) {
    kvc_dir_free(d);
    kvc_info_free(info);
    return 0;
  }
  snprintf(hit_path, size, "%s", kvc_dir_entry(d, i)->path);
  kvc_dir_free(d);
  if (kvc_load_open(hit_path, NULL, info, &l, &e) == KVC_ERR_OK) {
    const uint64_t bytes = kvc_info_facts(info)->header.payload_bytes;
    scratch = (unsigned char*)malloc(bytes != 0 ? (size_t)bytes : 1);
    loaded = scratch != NULL && load_state(l, scratch, (size_t)bytes) == 0;
    if (kvc_load_finish(l, &e) == KVC_ERR_OK && loaded) {
      *state = scratch; /* every CRC matched: commit */
      scratch = NULL;
      tokens = (long)kvc_info_facts(info)->header.tokens;
    }
  }
  if (e.code != KVC_ERR_OK) { /* refused: ds4 removes a file that does not load */
    logged("load", hit_path, &e);
    if (remove(hit_path) == 0) fprintf(stderr, "cache: removed %s\n", hit_path);
  }
  kvc_load_close(l);
  free(scratch); /* what a failed load staged */
  kvc_info_free(info);
  kvc_file_options_init(&opt);
  opt.durability = KVC_DURABILITY_CACHE;
  if (tokens > 0 && kvc_touch_file(hit_path, c->now, &opt, NULL, &e) != KVC_ERR_OK) logged("touch", hit_path, &e);
  return tokens;
}

/* Replaces a file's tool map, keeping its title: in place, O(sections). */
static int cache_remember_tools(const cache* c, const char* path, const kvc_tool_entry* tools, size_t count) {
  kvc_appended_changes change = {KVC_REPLACE, NULL, 0, KVC_KEEP, NULL, 0};
  kvc_file_options opt;
  kvc_error e;
  change.tools = tools;
  change.tool_count = count;
  kvc_file_options_init(&opt);
  opt.durability = KVC_DURABILITY_CACHE;
  opt.in_place = 1;
  if (kvc_rewrite_appended_file(path, &change, c->now, &opt, NULL, &e) != KVC_ERR_OK)
    return logged("tool map", path, &e);
  return 0;
}

static void cache_print(const cache* c) {
  kvc_dir* d;
  kvc_error e;
  size_t i;
  if (kvc_dir_list(c->dir, NULL, &d, &e) != KVC_ERR_OK) {
    logged("list", c->dir, &e);
    return;
  }
  for (i = 0; i < kvc_dir_count(d); ++i) {
    const kvc_entry* x = kvc_dir_entry(d, i);
    if (x->kind == KVC_ENTRY_CACHE_FILE && x->error.code == KVC_ERR_OK)
      printf("  %s v%u tokens %lu hits %lu\n", x->name, (unsigned)x->header.version, (unsigned long)x->header.tokens,
             (unsigned long)x->header.hits);
    else
      printf("  %s %s\n", x->name, kvc_entry_kind_name(x->kind));
  }
  kvc_dir_free(d);
}

/* ---- A demo session ---- */

int main(int argc, char** argv) {
  static const char first[] = "<|User|>Hello<|Assistant|>";
  static const char longer[] = "<|User|>Hello<|Assistant|>Hi!<|User|>What time is it?<|Assistant|>";
  static const char side[] = "<|User|>Translate this<|Assistant|>";
  static const char prompt[] = "<|User|>Hello<|Assistant|>Hi!<|User|>What time is it?<|Assistant|>It is noon.<|User|>";
  kvc_tool_entry calls[2] = {{"call_1", 6, "<tool_call>time</tool_call>", 27},
                             {"call_2", 6, "<tool_call>tz</tool_call>", 25}};
  kvc_appended with_tools = {NULL, 1, NULL, 0}, titled = {NULL, 1, "side chat", 9};
  cache c;
  char hit[4096], path[4096], titled_path[4096];
  unsigned char* state = NULL;
  uint64_t removed = 0;
  kvc_error e;
  long tokens;
  if (argc != 3) {
    fprintf(stderr, "usage: engine_cache DIR NOW\n");
    return 2;
  }
  c.dir = argv[1];
  c.now = strtoull(argv[2], NULL, 10);
  c.context = 4096;
  c.budget = 600000; /* room for two of the three sessions */
  with_tools.tools = titled.tools = calls;
  printf("kvc %s\n", kvc_version());
  if (kvc_remove_temporaries(c.dir, 3600, &removed, &e) != KVC_ERR_OK) return logged("clean", c.dir, &e);
  printf("removed %llu stale temporaries\n", (unsigned long long)removed);
  if (cache_save(&c, first, 3, 1, 200000, NULL, path, sizeof path) ||
      cache_save(&c, side, 5, 3, 250000, &titled, titled_path, sizeof titled_path) ||
      cache_save(&c, longer, 12, 2, 300000, &with_tools, path, sizeof path))
    return 1;
  tokens = cache_restore(&c, prompt, &state, hit, sizeof hit);
  if (tokens <= 0) return 1;
  printf("restored %ld tokens from %s, state byte 1 is %u\n", tokens, strrchr(hit, '/') + 1, (unsigned)state[1]);
  free(state);
  if (cache_remember_tools(&c, titled_path, calls, 2)) return 1;
  printf("replaced the tool map of %s, title kept\n", strrchr(titled_path, '/') + 1);
  cache_print(&c);
  return 0;
}
