/* consumer.cpp's program in C99, through kvc/kvc.h: verify one file at level
 * full and print its version and token count. */
#include <kvc/kvc.h>
#include <stdio.h>

int main(int argc, char** argv) {
  kvc_info* info;
  kvc_error e;
  const kvc_header* h;
  if (argc != 2) return 2;
  info = kvc_info_new();
  if (info == NULL) return 1;
  if (kvc_verify_file(argv[1], NULL, info, &e) != KVC_ERR_OK) {
    printf("%s: %s\n", argv[1], kvc_errc_name(e.code));
    kvc_info_free(info);
    return 1;
  }
  h = &kvc_info_facts(info)->header;
  printf("ok v%u tokens=%lu\n", (unsigned)h->version, (unsigned long)h->tokens);
  kvc_info_free(info);
  return 0;
}
