/* LD_PRELOAD fault injector for the file-operation tests: while armed, the
   n-th call (counted across the wrapped system calls below) fails with the
   armed error number, without reaching the kernel. The test program finds
   kvc_fault_arm / kvc_fault_calls with dlsym. For programs that cannot arm
   it (the kvc tool), KVC_FAULT_FSYNC=<errno> fails every fsync instead.
   Also: kvc_fault_fsyncs counts fsyncs (a durability level that promises
   none must make none); kvc_fault_rename_delay holds every rename, renameat2
   and link for a while (another process can create the target meanwhile);
   kvc_fault_renameat2_errno makes renameat2 fail as a file system without
   RENAME_NOREPLACE does; kvc_trace_set hands every successful change to the
   file system (creations, writes, truncations, copies, renames, links,
   removals, fsyncs) to a callback, in order, for the crash-state replay. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static long armed_at = -1; /* the call number that fails; -1: disarmed */
static long calls = 0;
static int fail_errno = EIO;
static long fsyncs = 0;
static long rename_delay_us = 0;
static int renameat2_errno = 0;

long kvc_fault_fsyncs(void) { return fsyncs; }
void kvc_fault_rename_delay(long microseconds) { rename_delay_us = microseconds; }
void kvc_fault_renameat2_errno(int err) { renameat2_errno = err; }
static void rename_delay(void) {
  if (rename_delay_us > 0) usleep((useconds_t)rename_delay_us);
}

/* One change to the file system, as the crash-state replay needs it: paths
   are absolute (a descriptor's path is its current one). */
struct kvc_trace_op {
  const char* kind; /* create write truncate copy rename link unlink fsync */
  const char* path;
  const char* path2; /* rename, link: the new name; copy: the source */
  long long at;      /* write, copy: the offset written; truncate: the size */
  long long at2;     /* copy: the source offset */
  const void* data;  /* write */
  long long n;       /* write, copy: bytes */
};
typedef void (*kvc_trace_fn)(const struct kvc_trace_op*);
static kvc_trace_fn tracer = NULL;
void kvc_trace_set(kvc_trace_fn f) { tracer = f; }

static void fd_path(int fd, char* out, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, size - 1);
  out[n < 0 ? 0 : n] = 0;
}
static void trace(const char* kind, const char* path, const char* path2, long long at, long long at2, const void* data,
                  long long n) {
  struct kvc_trace_op op = {kind, path, path2, at, at2, data, n};
  kvc_trace_fn f = tracer;
  tracer = NULL; /* the callback's own calls are not traced */
  f(&op);
  tracer = f;
}
static void trace_fd(const char* kind, int fd, long long at, const void* data, long long n) {
  char p[4096];
  if (tracer == NULL) return;
  fd_path(fd, p, sizeof p);
  trace(kind, p, NULL, at, 0, data, n);
}

void kvc_fault_arm(long at, int err) {
  armed_at = at;
  calls = 0;
  fail_errno = err;
}
long kvc_fault_calls(void) { return calls; }

/* True when this call is to fail (errno set). */
static int inject(void) {
  if (armed_at < 0) return 0;
  if (calls++ != armed_at) return 0;
  errno = fail_errno;
  return 1;
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int open(const char* p, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (mode_t)va_arg(ap, unsigned);
  va_end(ap);
  if (inject()) return -1;
  int fd = NEXT(open)(p, flags, mode);
  if (fd >= 0 && (flags & O_CREAT)) trace_fd("create", fd, 0, NULL, 0);
  return fd;
}
int open64(const char* p, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (mode_t)va_arg(ap, unsigned);
  va_end(ap);
  if (inject()) return -1;
  int fd = NEXT(open64)(p, flags, mode);
  if (fd >= 0 && (flags & O_CREAT)) trace_fd("create", fd, 0, NULL, 0);
  return fd;
}
int close(int fd) {
  if (inject()) {
    NEXT(close)(fd); /* Linux: the descriptor is gone even when close fails */
    return -1;
  }
  return NEXT(close)(fd);
}
ssize_t read(int fd, void* b, size_t n) { return inject() ? -1 : NEXT(read)(fd, b, n); }
ssize_t write(int fd, const void* b, size_t n) {
  if (inject()) return -1;
  const off_t at = tracer ? lseek(fd, 0, SEEK_CUR) : 0;
  ssize_t r = NEXT(write)(fd, b, n);
  if (r > 0 && at >= 0) trace_fd("write", fd, at, b, r);
  return r;
}
ssize_t pread(int fd, void* b, size_t n, off_t at) { return inject() ? -1 : NEXT(pread)(fd, b, n, at); }
ssize_t pread64(int fd, void* b, size_t n, off64_t at) { return inject() ? -1 : NEXT(pread64)(fd, b, n, at); }
ssize_t pwrite(int fd, const void* b, size_t n, off_t at) {
  if (inject()) return -1;
  ssize_t r = NEXT(pwrite)(fd, b, n, at);
  if (r > 0) trace_fd("write", fd, at, b, r);
  return r;
}
ssize_t pwrite64(int fd, const void* b, size_t n, off64_t at) {
  if (inject()) return -1;
  ssize_t r = NEXT(pwrite64)(fd, b, n, at);
  if (r > 0) trace_fd("write", fd, at, b, r);
  return r;
}
static int fsync_errno = 0; /* KVC_FAULT_FSYNC: every fsync fails with it */
__attribute__((constructor)) static void read_environment(void) {
  const char* e = getenv("KVC_FAULT_FSYNC");
  if (e != NULL) fsync_errno = atoi(e);
}
int fsync(int fd) {
  ++fsyncs;
  if (fsync_errno != 0) {
    errno = fsync_errno;
    return -1;
  }
  if (inject()) return -1;
  int r = NEXT(fsync)(fd);
  if (r == 0) trace_fd("fsync", fd, 0, NULL, 0);
  return r;
}
int fallocate(int fd, int mode, off_t at, off_t n) { return inject() ? -1 : NEXT(fallocate)(fd, mode, at, n); }
int fallocate64(int fd, int mode, off64_t at, off64_t n) {
  return inject() ? -1 : NEXT(fallocate64)(fd, mode, at, n);
}
int ftruncate(int fd, off_t n) {
  if (inject()) return -1;
  int r = NEXT(ftruncate)(fd, n);
  if (r == 0) trace_fd("truncate", fd, n, NULL, 0);
  return r;
}
int ftruncate64(int fd, off64_t n) {
  if (inject()) return -1;
  int r = NEXT(ftruncate64)(fd, n);
  if (r == 0) trace_fd("truncate", fd, n, NULL, 0);
  return r;
}
int rename(const char* a, const char* b) {
  rename_delay();
  if (inject()) return -1;
  int r = NEXT(rename)(a, b);
  if (r == 0 && tracer) trace("rename", a, b, 0, 0, NULL, 0);
  return r;
}
int renameat2(int da, const char* a, int db, const char* b, unsigned flags) {
  rename_delay();
  if (renameat2_errno != 0) {
    errno = renameat2_errno;
    return -1;
  }
  if (inject()) return -1;
  int r = NEXT(renameat2)(da, a, db, b, flags);
  if (r == 0 && tracer) trace("rename", a, b, 0, 0, NULL, 0);
  return r;
}
int link(const char* a, const char* b) {
  rename_delay();
  if (inject()) return -1;
  int r = NEXT(link)(a, b);
  if (r == 0 && tracer) trace("link", a, b, 0, 0, NULL, 0);
  return r;
}
int unlink(const char* p) {
  if (inject()) return -1;
  int r = NEXT(unlink)(p);
  if (r == 0 && tracer) trace("unlink", p, NULL, 0, 0, NULL, 0);
  return r;
}
int fchown(int fd, uid_t u, gid_t g) { return inject() ? -1 : NEXT(fchown)(fd, u, g); }
int fchmod(int fd, mode_t m) { return inject() ? -1 : NEXT(fchmod)(fd, m); }
int stat(const char* p, struct stat* st) { return inject() ? -1 : NEXT(stat)(p, st); }
int lstat(const char* p, struct stat* st) { return inject() ? -1 : NEXT(lstat)(p, st); }
int fstat(int fd, struct stat* st) { return inject() ? -1 : NEXT(fstat)(fd, st); }
int flock(int fd, int op) { return inject() ? -1 : NEXT(flock)(fd, op); }
ssize_t copy_file_range(int in, off64_t* ip, int out, off64_t* op, size_t n, unsigned f) {
  if (inject()) return -1;
  const off64_t from = ip ? *ip : lseek(in, 0, SEEK_CUR), to = op ? *op : lseek(out, 0, SEEK_CUR);
  ssize_t r = NEXT(copy_file_range)(in, ip, out, op, n, f);
  if (r > 0 && tracer) {
    char src[4096], dst[4096];
    fd_path(in, src, sizeof src);
    fd_path(out, dst, sizeof dst);
    trace("copy", dst, src, to, from, NULL, r);
  }
  return r;
}
int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (inject()) return -1;
  int r = NEXT(ioctl)(fd, req, arg);
  if (r == 0 && req == FICLONE && tracer) { /* a whole-file clone: a copy of every byte */
    char src[4096], dst[4096];
    fd_path((int)(long)arg, src, sizeof src);
    fd_path(fd, dst, sizeof dst);
    trace("copy", dst, src, 0, 0, NULL, -1);
  }
  return r;
}
int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (inject()) return -1;
  return NEXT(fcntl)(fd, cmd, arg);
}
