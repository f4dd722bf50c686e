// ===========================================================================
// I/O
//
// Streams plug in through one customisation point, kvc::stream_traits<S>.
// An operation uses only the static functions it needs:
//
//   read(S&, void*, size_t) -> io_result                 sequential source
//   write(S&, const void*, size_t) -> io_result          sequential sink
//   read_at(S&, void*, size_t, uint64_t) -> io_result    random access
//   write_at(S&, const void*, size_t, uint64_t) -> io_result
//   size(S&) -> uint64_t        whole file size, or kvc::unknown_size
//   truncate(S&, uint64_t) -> io_result
//   sync(S&) -> io_result       optional: make written bytes durable
//   view(S&, size_t) -> io_view optional: the next bytes without a copy
//
// A stream is positioned at the file's first byte. A short count is not an
// error (kvc loops); bytes == 0 with io_status::ok is the end of the data;
// io_status::interrupted (EINTR) makes kvc retry. Adapters ship here for
// memory, std::vector / std::string and std::istream / std::ostream; the
// platform layer adds FILE*, POSIX file descriptors (fd_stream) and Windows
// file handles (win32_file).
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

enum class io_status : std::uint8_t { ok, interrupted, failed };

// os_error: the OS error number behind a failed status, 0 when unknown.
struct [[nodiscard]] io_result {
  std::size_t bytes = 0;
  io_status status = io_status::ok;
  int os_error = 0;
};

// A zero-copy sequential read: up to n bytes at the stream position, valid
// until the next call; bytes == 0 with io_status::ok is the end of the data.
struct io_view {
  const std::uint8_t* data = nullptr;
  io_result r{};
};

// Specialise for your stream type; the primary template supports nothing.
template <class S, class Enable = void>
struct stream_traits {};

namespace detail {
// has_X<S> is true when stream_traits<S>::X can be called as documented and
// returns what kvc expects; a function of that name returning something else
// does not count, so KVC_REQUIRE_STREAM names it instead of a conversion error
// deep inside kvc.
#define KVC_STREAM_TRAIT(trait, returns, call)                   \
  template <class S, class = void>                               \
  struct trait : std::false_type {};                             \
  template <class S>                                             \
  struct trait<S, std::void_t<decltype(stream_traits<S>::call)>> \
      : std::is_convertible<decltype(stream_traits<S>::call), returns> {}
KVC_STREAM_TRAIT(has_read, io_result, read(std::declval<S&>(), std::declval<void*>(), std::size_t{}));
KVC_STREAM_TRAIT(has_write, io_result, write(std::declval<S&>(), std::declval<const void*>(), std::size_t{}));
KVC_STREAM_TRAIT(has_read_at, io_result,
                 read_at(std::declval<S&>(), std::declval<void*>(), std::size_t{}, std::uint64_t{}));
KVC_STREAM_TRAIT(has_write_at, io_result,
                 write_at(std::declval<S&>(), std::declval<const void*>(), std::size_t{}, std::uint64_t{}));
KVC_STREAM_TRAIT(has_size, std::uint64_t, size(std::declval<S&>()));
KVC_STREAM_TRAIT(has_truncate, io_result, truncate(std::declval<S&>(), std::uint64_t{}));
KVC_STREAM_TRAIT(has_sync, io_result, sync(std::declval<S&>()));
#undef KVC_STREAM_TRAIT

#define KVC_REQUIRE_STREAM(trait, S, what)                                                               \
  static_assert(::kvc::detail::trait<S>::value, "kvc: this operation needs kvc::stream_traits<S>::" what \
                                                ", which your stream type does not provide with that signature")

// A stream that keeps being interrupted is treated as failed.
constexpr int max_interrupts = 1000;

// Calls once(done) until n bytes moved, the data ends (a zero count when
// zero_is_end) or the stream fails. Returns the bytes moved.
template <class Once>
io_result transfer_all(std::size_t n, bool zero_is_end, Once&& once) {
  std::size_t done = 0;
  int interrupts = 0;
  while (done < n) {
    const io_result r = once(done);
    if (r.status == io_status::interrupted) {
      if (++interrupts > max_interrupts) return {done, io_status::failed};
      continue;
    }
    if (r.status == io_status::failed || r.bytes > n - done) return {done, io_status::failed, r.os_error};
    if (r.bytes == 0) {
      if (zero_is_end) break;
      return {done, io_status::failed};  // a sink that accepts nothing
    }
    done += r.bytes;
    interrupts = 0;
  }
  return {done, io_status::ok};
}

// The io_error of a transfer that began at file offset `at` and failed after
// r.bytes bytes, with the OS cause the stream gave.
constexpr error io_failure(section where, std::uint64_t at, const io_result& r) noexcept {
  return make_error(errc::io_error, where, at + r.bytes, r.os_error);
}

template <class S>
io_result read_fully(S& s, void* p, std::size_t n) {
  return transfer_all(n, true, [&](std::size_t done) {
    return stream_traits<S>::read(s, static_cast<std::uint8_t*>(p) + done, n - done);
  });
}
template <class S>
io_result write_fully(S& s, const void* p, std::size_t n) {
  return transfer_all(n, false, [&](std::size_t done) {
    return stream_traits<S>::write(s, static_cast<const std::uint8_t*>(p) + done, n - done);
  });
}
template <class S>
io_result write_fully_at(S& s, const void* p, std::size_t n, std::uint64_t at) {
  return transfer_all(n, false, [&](std::size_t done) {
    return stream_traits<S>::write_at(s, static_cast<const std::uint8_t*>(p) + done, n - done, at + done);
  });
}

template <class S>
std::uint64_t size_of(S& s) {
  if constexpr (has_size<S>::value)
    return stream_traits<S>::size(s);
  else
    return unknown_size;
}

template <class S>
error sync_if_supported(S& s, std::uint64_t at) {
  if constexpr (has_sync<S>::value) {
    const io_result r = stream_traits<S>::sync(s);
    if (r.status != io_status::ok) return io_failure(section::none, at, r);
  }
  return {};
}

inline std::size_t clamp_size(std::uint64_t v, std::size_t cap) noexcept {
  return v < cap ? static_cast<std::size_t>(v) : cap;
}

// Copies up to n bytes at offset `at` out of size in-memory bytes.
inline io_result read_bytes_at(const void* data, std::size_t size, void* p, std::size_t n, std::uint64_t at) noexcept {
  if (at >= size) return {};
  const std::size_t take = clamp_size(size - at, n);
  std::memcpy(p, static_cast<const std::uint8_t*>(data) + at, take);
  return {take, io_status::ok};
}
}  // namespace detail

// ---- Memory ---------------------------------------------------------------

// A read-only view of bytes with a read position.
class memory_stream {
 public:
  memory_stream(const void* data, std::size_t size) noexcept
      : data_(static_cast<const std::uint8_t*>(data)), size_(size) {}
  template <class Container, class = decltype(std::declval<const Container&>().data())>
  explicit memory_stream(const Container& c) noexcept : memory_stream(c.data(), c.size()) {}

 private:
  friend struct stream_traits<memory_stream>;
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

template <>
struct stream_traits<memory_stream> {
  static io_result read_at(memory_stream& m, void* p, std::size_t n, std::uint64_t at) noexcept {
    return detail::read_bytes_at(m.data_, m.size_, p, n, at);
  }
  static io_result read(memory_stream& m, void* p, std::size_t n) noexcept {
    const io_result r = read_at(m, p, n, m.pos_);
    m.pos_ += r.bytes;
    return r;
  }
  static io_view view(memory_stream& m, std::size_t n) noexcept {
    const io_view v{m.data_ + m.pos_, {m.pos_ < m.size_ ? detail::clamp_size(m.size_ - m.pos_, n) : 0, io_status::ok}};
    m.pos_ += v.r.bytes;
    return v;
  }
  static std::uint64_t size(memory_stream& m) noexcept { return m.size_; }
};

// std::vector<std::uint8_t> and std::string are growable files: write appends,
// the positioned functions address the whole buffer.
namespace detail {
template <class C>
struct container_traits {
  static io_result write(C& c, const void* p, std::size_t n) {
    const auto* b = static_cast<const typename C::value_type*>(p);
    c.insert(c.end(), b, b + n);
    return {n, io_status::ok};
  }
  static io_result write_at(C& c, const void* p, std::size_t n, std::uint64_t at) {
    if (at > c.max_size() || n > c.max_size() - at) return {0, io_status::failed};  // at + n would wrap
    const auto end = static_cast<std::size_t>(at) + n;
    if (c.size() < end) c.resize(end);
    std::memcpy(&c[static_cast<std::size_t>(at)], p, n);
    return {n, io_status::ok};
  }
  static io_result read_at(C& c, void* p, std::size_t n, std::uint64_t at) noexcept {
    return read_bytes_at(c.data(), c.size(), p, n, at);
  }
  static std::uint64_t size(C& c) noexcept { return c.size(); }
  static io_result truncate(C& c, std::uint64_t n) {
    if (n > c.size()) return {0, io_status::failed};
    c.resize(static_cast<std::size_t>(n));
    return {};
  }
};
}  // namespace detail

template <>
struct stream_traits<std::vector<std::uint8_t>> : detail::container_traits<std::vector<std::uint8_t>> {};
template <>
struct stream_traits<std::string> : detail::container_traits<std::string> {};

// Reads a random-access stream sequentially from offset 0, for the reader.
template <class S>
class cursor {
 public:
  explicit cursor(S& s, std::uint64_t at = 0) noexcept : s_(&s), pos_(at) {}

 private:
  friend struct stream_traits<cursor<S>>;
  S* s_;
  std::uint64_t pos_;
};

template <class S>
struct stream_traits<cursor<S>> {
  static io_result read(cursor<S>& c, void* p, std::size_t n) {
    const io_result r = stream_traits<S>::read_at(*c.s_, p, n, c.pos_);
    c.pos_ += r.bytes;
    return r;
  }
  static std::uint64_t size(cursor<S>& c) { return detail::size_of(*c.s_); }
};

// ---- std::istream / std::ostream ------------------------------------------
// Written against <iosfwd> only: every use of a stream is a member of the
// dependent type, so a unit that never passes an iostream pays nothing.

template <class S>
struct stream_traits<S, std::enable_if_t<std::is_base_of_v<std::ios_base, S>>> {
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::istream, T>, int> = 0>
  static io_result read(T& s, void* p, std::size_t n) {
    s.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (s.bad()) return {0, io_status::failed};
    return {static_cast<std::size_t>(s.gcount()), io_status::ok};
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::istream, T>, int> = 0>
  static io_result read_at(T& s, void* p, std::size_t n, std::uint64_t at) {
    s.clear();
    if (!s.seekg(static_cast<std::streamoff>(at))) return {0, io_status::failed};
    return read(s, p, n);
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::istream, T>, int> = 0>
  static std::uint64_t size(T& s) {
    const auto here = s.tellg();
    if (here < 0 || !s.seekg(0, T::end)) {
      s.clear();
      return unknown_size;
    }
    const auto end = s.tellg();
    s.seekg(here);
    return end < 0 ? unknown_size : static_cast<std::uint64_t>(end);
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::ostream, T>, int> = 0>
  static io_result write(T& s, const void* p, std::size_t n) {
    s.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    return s ? io_result{n, io_status::ok} : io_result{0, io_status::failed};
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::ostream, T>, int> = 0>
  static io_result write_at(T& s, const void* p, std::size_t n, std::uint64_t at) {
    const auto back = s.tellp();
    if (!s.seekp(static_cast<std::streamoff>(at))) return {0, io_status::failed};
    const io_result r = write(s, p, n);
    s.seekp(back);
    return r;
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::ostream, T>, int> = 0>
  static io_result sync(T& s) {
    return s.flush() ? io_result{} : io_result{0, io_status::failed};
  }
};

// ---- Buffers and threads ----------------------------------------------------

namespace detail {
template <class S, class = void>
struct has_view : std::false_type {};
template <class S>
struct has_view<S, std::void_t<decltype(stream_traits<S>::view(std::declval<S&>(), std::size_t{}))>> : std::true_type {
};

// Bytes that grow without being zero-filled: a buffer holds only what a
// read put there, so growing it must not cost a memset of its capacity.
class byte_buffer {
 public:
  byte_buffer() = default;
  byte_buffer(byte_buffer&& o) noexcept : p_(o.p_), cap_(o.cap_) { o.p_ = nullptr, o.cap_ = 0; }
  byte_buffer& operator=(byte_buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(cap_, o.cap_);
    return *this;
  }
  ~byte_buffer() { delete[] p_; }

  std::uint8_t* data() const noexcept { return p_; }
  std::size_t capacity() const noexcept { return cap_; }
  // At least n bytes; the old contents are dropped when it grows.
  std::uint8_t* reserve(std::size_t n) {
    if (n > cap_) {
      delete[] p_;
      p_ = nullptr;
      cap_ = 0;
      p_ = new std::uint8_t[n];
      cap_ = n;
    }
    return p_;
  }

 private:
  std::uint8_t* p_ = nullptr;
  std::size_t cap_ = 0;
};

// ---- Threads --------------------------------------------------------------
// The format core starts no thread itself: the platform layer (after the
// core) registers how to start and join one during static initialisation
// of any unit that includes the whole header. In a program of core-only
// units, or before that initialisation ran, every job runs on the calling
// thread; results never depend on getting a thread.

// One thread: the job it runs, and the platform's handle for it.
struct thread_slot {
  void (*run)(void*) = nullptr;
  void* job = nullptr;
  alignas(8) unsigned char handle[16] = {};  // a pthread_t or a HANDLE
};

struct thread_functions {
  bool (*start)(thread_slot&) noexcept;  // runs slot.run(slot.job) on a new thread
  void (*join)(thread_slot&) noexcept;
  // A monitor: a lock with one condition. wait() is called with the lock
  // held; it releases it, sleeps until notified (or spuriously), and takes
  // it again.
  void* (*monitor_new)() noexcept;  // nullptr when none can be made
  void (*monitor_free)(void*) noexcept;
  void (*lock)(void*) noexcept;
  void (*unlock)(void*) noexcept;
  void (*wait)(void*) noexcept;
  void (*notify_all)(void*) noexcept;
};

inline std::atomic<const thread_functions*> installed_threads{nullptr};

// Runs one job on a second thread. start() returns false when no thread
// could be made; the caller then runs the job itself.
class worker_thread {
 public:
  worker_thread() = default;
  worker_thread(const worker_thread&) = delete;
  worker_thread& operator=(const worker_thread&) = delete;
  ~worker_thread() { join(); }

  template <class Job>
  bool start(Job& job) noexcept {
    threads_ = installed_threads.load(std::memory_order_acquire);
    if (threads_ == nullptr) return false;
    slot_.run = [](void* j) { (*static_cast<Job*>(j))(); };
    slot_.job = &job;
    started_ = threads_->start(slot_);
    return started_;
  }
  void join() noexcept {
    if (started_) threads_->join(slot_);
    started_ = false;
  }

 private:
  thread_slot slot_;
  const thread_functions* threads_ = nullptr;
  bool started_ = false;
};

// A second thread kept for a series of jobs, one at a time: the writer's
// CRC thread, started at its first overlapped write and stopped with the
// writer, where a thread per call cost more than the CRC it hid.
class kept_thread {
 public:
  kept_thread() = default;
  kept_thread(kept_thread&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  kept_thread& operator=(kept_thread&& o) noexcept {
    if (this != &o) {
      stop();
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  kept_thread(const kept_thread&) = delete;
  kept_thread& operator=(const kept_thread&) = delete;
  ~kept_thread() { stop(); }

  // Hands job to the thread (started on first use) and returns at once;
  // false when there is no thread, and the caller runs the job itself.
  // job must live until wait() returns.
  template <class Job>
  bool post(Job& job) noexcept {
    if (s_ == nullptr && !start()) return false;
    s_->fns->lock(s_->monitor);
    s_->run = [](void* j) { (*static_cast<Job*>(j))(); };
    s_->job = &job;
    s_->fns->notify_all(s_->monitor);
    s_->fns->unlock(s_->monitor);
    return true;
  }
  // Returns once the posted job has run.
  void wait() noexcept {
    s_->fns->lock(s_->monitor);
    while (s_->job != nullptr) s_->fns->wait(s_->monitor);
    s_->fns->unlock(s_->monitor);
  }
  void stop() noexcept {
    if (s_ == nullptr) return;
    s_->fns->lock(s_->monitor);
    s_->stopping = true;
    s_->fns->notify_all(s_->monitor);
    s_->fns->unlock(s_->monitor);
    s_->thread.join();
    s_->fns->monitor_free(s_->monitor);
    delete s_;
    s_ = nullptr;
  }

 private:
  struct state {
    state(const thread_functions* f, void* m) noexcept : fns(f), monitor(m) {}
    const thread_functions* fns;
    void* monitor;
    void (*run)(void*) = nullptr;
    void* job = nullptr;  // posted and not yet run; guarded by monitor
    bool stopping = false;
    worker_thread thread;
    void operator()() noexcept {  // the thread's loop
      fns->lock(monitor);
      for (;;) {
        while (job == nullptr && !stopping) fns->wait(monitor);
        if (job == nullptr) break;
        fns->unlock(monitor);
        run(job);
        fns->lock(monitor);
        job = nullptr;
        fns->notify_all(monitor);
      }
      fns->unlock(monitor);
    }
  };
  bool start() noexcept {
    const thread_functions* fns = installed_threads.load(std::memory_order_acquire);
    if (fns == nullptr) return false;
    void* monitor = fns->monitor_new();
    if (monitor == nullptr) return false;
    s_ = new (std::nothrow) state{fns, monitor};
    if (s_ != nullptr && s_->thread.start(*s_)) return true;
    delete s_;
    s_ = nullptr;
    fns->monitor_free(monitor);
    return false;
  }
  state* s_ = nullptr;
};

// Parts smaller than this are not worth a thread.
inline constexpr std::size_t parallel_min_part = std::size_t{4} << 20;

// How many parts of at least parallel_min_part bytes n bytes make for
// `threads` threads (1 to 64).
inline std::size_t parallel_parts(std::uint64_t n, unsigned threads) noexcept {
  constexpr unsigned max_threads = 64;
  std::uint64_t parts = threads == 0 ? 1 : (threads < max_threads ? threads : max_threads);
  if (n / parts < parallel_min_part) parts = n / parallel_min_part == 0 ? 1 : n / parallel_min_part;
  return static_cast<std::size_t>(parts);
}

// Runs job(i) for every part i < parts: parts 1.. on threads of their own
// (a part whose thread cannot start runs here), part 0 on this thread.
template <class Job>
void run_parts(std::size_t parts, Job& job) noexcept {
  struct one {
    Job* job;
    std::size_t i;
    void operator()() noexcept { (*job)(i); }
  };
  constexpr std::size_t max_parts = 64;
  one jobs[max_parts]{};
  worker_thread workers[max_parts];
  for (std::size_t i = 0; i < parts && i < max_parts; ++i) jobs[i] = {&job, i};
  for (std::size_t i = 1; i < parts && i < max_parts; ++i)
    if (!workers[i].start(jobs[i])) jobs[i]();
  jobs[0]();
  for (std::size_t i = 1; i < parts && i < max_parts; ++i) workers[i].join();
}

// crc32c_extend(crc, p, n) computed by up to `threads` threads on equal
// parts joined with crc32c_combine.
inline void crc32c_parallel(std::uint32_t& crc, const std::uint8_t* p, std::size_t n, unsigned threads) noexcept {
  const std::size_t parts = parallel_parts(n, threads);
  const std::size_t part = n / parts;
  std::uint32_t crcs[64];
  auto job = [&](std::size_t i) { crcs[i] = crc32c(p + i * part, i + 1 == parts ? n - i * part : part); };
  run_parts(parts, job);
  for (std::size_t i = 0; i < parts; ++i) crc = crc32c_combine(crc, crcs[i], i + 1 == parts ? n - i * part : part);
}
}  // namespace detail

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
