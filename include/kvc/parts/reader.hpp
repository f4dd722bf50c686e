// ===========================================================================
// Reader
//
// One pass over a file in the spec's order (spec 12.7), in three pieces:
//   byte_source  the next bytes of a stream (a view of its memory, or read
//                into a buffer bounded by the file size), or bytes read
//                straight into the caller's memory;
//   region_crc   the CRC32C of the region being read, recorded in
//                file_info::computed as it grows;
//   file_reader  the checks, section by section, over the two; a payload
//                that is only verified or loaded, from a source that can,
//                is read in parts on several threads.
// kvc::read, verify and load are its entry points.
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// ---- Reading ----------------------------------------------------------------

// How much of a file a read checks (spec "Reading and verification").
enum class verify_level : std::uint8_t {
  header,    // the fixed header: fields, v2 header CRC, sizes against the file
  text,      // and the text with its CRC: enough for a same-text check
  full,      // every byte: payload CRC, appended sections and their CRC
  sections,  // header, text and the appended sections; the payload is skipped
};

constexpr const char* verify_level_name(verify_level l) noexcept {
  constexpr const char* names[] = {"header", "text", "full", "sections"};
  return static_cast<std::size_t>(l) < 4 ? names[static_cast<std::size_t>(l)] : "unknown";
}

struct tool_entry {
  std::string id;
  std::string dsml;
  friend bool operator==(const tool_entry& a, const tool_entry& b) { return a.id == b.id && a.dsml == b.dsml; }
};

struct read_options {
  verify_level level = verify_level::full;
  kvc::limits limits{};
  // When set, the DSV4 payload check runs against this model (level full).
  const model_desc* dsv4_model = nullptr;
  // Payload bytes handed to the consumer per call.
  std::size_t chunk_bytes = std::size_t{1} << 20;
  // Threads that read and checksum the payload when it is verified or
  // loaded from a source that can read in parallel (kvc::file_source), or
  // that checksum bytes a source hands over in memory: each takes an equal
  // part of at least 4 MiB, the parts' CRCs are joined with crc32c_combine.
  // 1 keeps the read on the calling thread.
  unsigned threads = 1;
  // false: the tool map is parsed and checksummed but not kept
  // (file_info::tools stays empty), so a level full read holds one chunk of
  // memory whatever the map holds. The title (at most max_title_bytes) is
  // kept either way: identity_name needs it.
  bool keep_sections = true;
};

// How far a read got. A read that fails stops at the stage before the one
// whose check failed: header_decoded means hdr holds the stored fields but they
// broke a header rule (CRC, quant bits, limits...), so they can be shown.
enum class read_stage : std::uint8_t {
  none,            // nothing decoded: I/O error, bad magic or version, short header
  header_decoded,  // hdr decoded
  header,          // and valid
  text,            // and the text read and checked
  payload,         // and the payload (CRC, DSV4 check when asked for)
  full,            // and the appended sections: every byte checked
  sections,        // level sections: header, text and appended sections checked, payload skipped
};

// What a read found. Fields past the stage that was reached stay empty.
// A CRC32C the reader computed over the first `bytes` bytes of one region.
struct computed_crc {
  std::uint32_t crc = 0;
  std::uint64_t bytes = 0;
};

struct file_info {
  read_stage stage = read_stage::none;
  header hdr;
  std::uint64_t file_size = unknown_size;  // as the stream reported it
  std::string text;                        // level text and full
  bool has_tool_map = false;               // level full
  std::vector<tool_entry> tools;
  bool has_title = false;
  std::string title;
  bool unknown_sections = false;     // extension bits 4..7 set: opaque bytes follow
  std::uint64_t unknown_offset = 0;  // where the opaque area starts (level full)
  std::uint64_t unknown_bytes = 0;   // and its length
  bool dsv4_checked = false;         // the DSV4 check ran and passed
  dsv4_header dsv4{};
  // What the reader checksummed (any version) of the text, payload and
  // appended area, even when it stopped in or before a region (then bytes is
  // short of the region's length): a tool reports computed against stored
  // CRCs, or finishes a region's CRC, without reading the bytes again.
  std::array<computed_crc, 3> computed{};
};

namespace detail {
// Runs the DSV4 check over payload bytes as they stream by: captures the
// 52-byte header and the two per-layer count arrays, nothing else.
class dsv4_scanner {
 public:
  dsv4_scanner(const model_desc& m, const header& h) : model_(m), kvc_(h) {}

  // The next n payload bytes, in order.
  void feed(const std::uint8_t* p, std::size_t n) {
    take_head(seen_, p, n);
    take_counts(seen_, p, n);
    seen_ += n;
  }

  // For a payload read out of order (kvc's parallel reads): the payload's
  // first bytes (take_head(0, ...)), then the bytes counts() locates
  // (take_counts), then skip_to(payload size).
  void take_head(std::uint64_t at, const std::uint8_t* p, std::size_t n) {
    capture(at, p, n, 0, head_, layout::dsv4::size);
    if (!decoded_ && at + n >= layout::dsv4::size) {
      decoded_ = true;
      d_ = decode_dsv4_header(head_);
      err_ = validate_dsv4_header(d_, kvc_, model_);
      if (!err_) counts_.resize(8 * std::size_t{d_.layers});  // layers == model.layers here
    }
  }
  void take_counts(std::uint64_t at, const std::uint8_t* p, std::size_t n) {
    if (decoded_ && !err_) capture(at, p, n, dsv4_counts_offset(d_), counts_.data(), counts_.size());
  }
  // Where the two count arrays are, once the header was taken and passed
  // (else length 0).
  std::pair<std::uint64_t, std::size_t> counts() const noexcept {
    if (!decoded_ || err_) return {0, 0};
    return {dsv4_counts_offset(d_), counts_.size()};
  }
  void skip_to(std::uint64_t payload_bytes) noexcept { seen_ = payload_bytes; }

  // The verdict once every payload byte was fed; offsets are file offsets.
  error finish(dsv4_header& out) {
    const std::uint64_t base = kvc_.payload_offset();
    if (!decoded_) return make_error(errc::payload_malformed, section::payload, base + seen_);
    if (err_) return make_error(err_.code, err_.where, base + err_.offset);
    if (seen_ < dsv4_prefix_bytes(d_)) return make_error(errc::payload_malformed, section::payload, base + seen_);
    std::vector<std::uint32_t> comp(d_.layers), index(d_.layers);
    for (std::uint32_t l = 0; l < d_.layers; ++l) {
      comp[l] = load_le<std::uint32_t>(counts_.data() + 4 * l);
      index[l] = load_le<std::uint32_t>(counts_.data() + 4 * (d_.layers + l));
    }
    const auto expected = dsv4_expected_size(d_, comp.data(), index.data(), model_);
    if (!expected) return make_error(expected.error().code, section::payload, base + expected.error().offset);
    if (*expected != seen_) return make_error(errc::payload_mismatch, section::payload, base);
    out = d_;
    return {};
  }

 private:
  // Copies the part of [at, at + n) that falls in [from, from + len).
  static void capture(std::uint64_t at, const std::uint8_t* p, std::size_t n, std::uint64_t from, std::uint8_t* dst,
                      std::size_t len) {
    const std::uint64_t lo = at > from ? at : from;
    const std::uint64_t hi_in = at + n, hi_want = from + len;
    const std::uint64_t hi = hi_in < hi_want ? hi_in : hi_want;
    if (lo < hi) std::memcpy(dst + (lo - from), p + (lo - at), static_cast<std::size_t>(hi - lo));
  }

  const model_desc& model_;
  const header& kvc_;
  std::uint8_t head_[layout::dsv4::size]{};
  std::vector<std::uint8_t> counts_;  // the two u32[layers] arrays, as stored
  std::uint64_t seen_ = 0;
  bool decoded_ = false;
  dsv4_header d_{};
  error err_{};
};

// The consumer of kvc::verify: the payload is checked, not kept;
// progress(std::uint64_t n) hears of every n more bytes checked, possibly
// from several threads at once.
template <class Progress>
struct payload_progress {
  Progress& progress;
};
template <class T>
struct is_payload_progress : std::false_type {};
template <class Progress>
struct is_payload_progress<payload_progress<Progress>> : std::true_type {};

// Hands n bytes to f(const std::uint8_t*, std::size_t), which returns void or
// kvc::error; an error stops the read that called it.
template <class F>
error deliver(F& f, const std::uint8_t* p, std::size_t n) {
  if constexpr (is_payload_progress<F>::value) {
    f.progress(std::uint64_t{n});
    return {};
  } else if constexpr (std::is_void_v<std::invoke_result_t<F&, const std::uint8_t*, std::size_t>>) {
    f(p, n);
    return {};
  } else {
    return f(p, n);
  }
}

// A callable f(const std::uint8_t*, std::size_t), returning void or
// kvc::error, by reference: the reader's byte pump is compiled once per
// source type, not once per sink. f must outlive the sink_ref.
class sink_ref {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, sink_ref>>>
  sink_ref(F&& f) noexcept  // NOLINT: implicit by design
      : f_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* g, const std::uint8_t* p, std::size_t n) {
          return deliver(*static_cast<std::remove_reference_t<F>*>(g), p, n);
        }) {}
  error operator()(const std::uint8_t* p, std::size_t n) const { return call_(f_, p, n); }

 private:
  void* f_;
  error (*call_)(void*, const std::uint8_t*, std::size_t);
};

// Wraps place(const file_info&) -> std::uint8_t*: the reader asks it for the
// payload's destination once and reads the payload straight into it.
template <class Place>
struct payload_placement {
  Place& place;
};
template <class T>
struct is_payload_placement : std::false_type {};
template <class Place>
struct is_payload_placement<payload_placement<Place>> : std::true_type {};

// A source that can read the payload on several threads at once declares
// parallel_reads(S&) -> bool (true when read_at may run concurrently on it
// right now) and skip(S&, n) (moves its sequential position past bytes read
// with read_at).
template <class S, class = void>
struct has_parallel_reads : std::false_type {};
template <class S>
struct has_parallel_reads<S, std::void_t<decltype(stream_traits<S>::parallel_reads(std::declval<S&>())),
                                         decltype(stream_traits<S>::skip(std::declval<S&>(), std::uint64_t{}))>>
    : std::true_type {};

template <class S>
io_result read_fully_at(S& s, void* p, std::size_t n, std::uint64_t at) {
  return transfer_all(n, true, [&](std::size_t done) {
    return stream_traits<S>::read_at(s, static_cast<std::uint8_t*>(p) + done, n - done, at + done);
  });
}

// ---- The byte source ---------------------------------------------------------

// The next bytes of a sequential source S, counted from the file offset it
// starts at. A view of the stream's memory when it offers views, else a
// read into a buffer of its own of at most `chunk` bytes; a known file size
// bounds that read, so the buffer never grows beyond what the file holds
// (plus the one byte that finds its end). A failed read does not move pos().
template <class S>
class byte_source {
 public:
  byte_source(S& s, std::size_t chunk, std::uint64_t at = 0)
      : s_(s), chunk_(chunk == 0 ? 1 : chunk), size_(size_of(s)), pos_(at) {}

  std::uint64_t size() const noexcept { return size_; }  // as the stream reported it
  std::uint64_t pos() const noexcept { return pos_; }
  S& stream() noexcept { return s_; }

  // Up to n of the next bytes; r.bytes == 0 with io_status::ok: the data ended.
  io_view next(std::uint64_t n) {
    io_view v;
    if constexpr (has_view<S>::value) {
      v = stream_traits<S>::view(s_, clamp_size(n, (std::numeric_limits<std::size_t>::max)()));
    } else {
      if (ended_) return {};
      std::size_t want = clamp_size(n, chunk_);
      if (size_ != unknown_size && size_ >= pos_ && size_ - pos_ < want)
        want = static_cast<std::size_t>(size_ - pos_) + 1;
      const io_result r = read_fully(s_, buf_.reserve(want), want);
      ended_ = r.bytes < want;
      v = {buf_.data(), r};
    }
    if (v.r.status == io_status::ok) pos_ += v.r.bytes;
    return v;
  }

  // Up to n bytes straight into dst, fewer only where the data ends.
  io_result read_into(std::uint8_t* dst, std::size_t n) {
    const io_result r = read_fully(s_, dst, n);
    if (r.status == io_status::ok) pos_ += r.bytes;
    return r;
  }

  // Moves past n bytes that were read with read_at (parallel reads).
  void skip(std::uint64_t n) {
    stream_traits<S>::skip(s_, n);
    pos_ += n;
  }

 private:
  S& s_;
  std::size_t chunk_;
  std::uint64_t size_;
  std::uint64_t pos_;
  byte_buffer buf_;
  bool ended_ = false;  // a short buffered read showed the end of the data
};

// ---- CRC accounting ------------------------------------------------------------

// The CRC32C of the region being read, and its record (file_info::computed,
// when the region has one) kept up to date as bytes are added.
class region_crc {
 public:
  void begin(computed_crc* record) noexcept {
    crc_ = 0;
    record_ = record;
  }
  // n more bytes of the region, checksummed on `threads` threads when many.
  void add(const std::uint8_t* p, std::size_t n, unsigned threads = 1) noexcept {
    if (threads > 1)
      crc32c_parallel(crc_, p, n, threads);
    else
      crc_ = crc32c_extend(crc_, p, n);
    counted(n);
  }
  // The CRC of the region's next n bytes, computed elsewhere.
  void join(std::uint32_t crc, std::uint64_t n) noexcept {
    crc_ = crc32c_combine(crc_, crc, n);
    counted(n);
  }
  std::uint32_t value() const noexcept { return crc_; }

 private:
  void counted(std::uint64_t n) noexcept {
    if (record_ == nullptr) return;
    record_->crc = crc_;
    record_->bytes += n;
  }
  std::uint32_t crc_ = 0;
  computed_crc* record_ = nullptr;
};

// ---- The checks ------------------------------------------------------------------
}  // namespace detail

template <class Source>
class payload_reader;

namespace detail {

// One read of one file, in the spec's order. S is a sequential source whose
// first byte is file offset `at`.
template <class S>
class file_reader {
 public:
  file_reader(S& s, const read_options& opt, file_info& info, std::uint64_t at = 0)
      : src_(s, opt.chunk_bytes, at), opt_(opt), info_(info), chunk_(opt.chunk_bytes == 0 ? 1 : opt.chunk_bytes) {}
  friend class payload_reader<S>;

  // The whole read at opt.level; the payload (level full) goes to consume.
  template <class Consumer>
  error run(Consumer& consume) {
    if (error e = open()) return e;
    if (opt_.level == verify_level::header || opt_.level == verify_level::text) return {};
    if (opt_.level == verify_level::sections) return skip_payload();
    if (error e = read_payload(consume)) return e;
    return finish();
  }

  // Stage 1: the header and, unless opt.level is header, the text. Then the
  // payload is read with pull, or with read_payload, and finish() ends.
  error open() {
    info_ = file_info{};
    if (opt_.dsv4_model != nullptr && !opt_.dsv4_model->usable())
      return make_error(errc::invalid_argument, section::none, 0);  // spec "Model description"
    info_.file_size = src_.size();
    if (error e = read_header()) return e;
    info_.stage = read_stage::header;
    if (opt_.level == verify_level::header) return {};
    if (error e = read_text()) return e;
    info_.stage = read_stage::text;
    if (opt_.level != verify_level::text) begin_payload();
    return {};
  }

  // Stage 2, in order: up to n next payload bytes into dst; got == 0 at the
  // payload's end.
  error pull(std::uint8_t* dst, std::size_t n, std::size_t& got) {
    got = 0;
    const std::uint64_t left = h().payload_bytes - payload_got_;
    const std::size_t want = clamp_size(left, n);
    if (want == 0) return {};
    const io_result r = src_.read_into(dst, want);
    if (r.status != io_status::ok) return io_failure(section::payload, src_.pos(), r);
    crc_.add(dst, r.bytes);
    if (scan_) scan_->feed(dst, r.bytes);
    payload_got_ += r.bytes;
    got = r.bytes;
    if (r.bytes == 0) return make_error(errc::truncated, section::payload, src_.pos());
    return {};
  }

  // Stage 3: what is left of the payload (checked, not kept), the payload's
  // checks, then the appended sections.
  error finish() {
    if (payload_got_ < h().payload_bytes) {
      std::uint64_t got = 0;
      if (error e = pump(h().payload_bytes - payload_got_, got, [&](const std::uint8_t* p, std::size_t k) {
            if (scan_) scan_->feed(p, k);
          }))
        return e;
      payload_got_ += got;
    }
    if (error e = end_payload()) return e;
    info_.stage = read_stage::payload;
    if (error e = read_appended()) return e;
    info_.stage = read_stage::full;
    return {};
  }

  // Reads only the appended sections of a file whose header h was already
  // read and checked; the source starts at h.sections_offset().
  error run_sections(const header& h) {
    info_ = file_info{};
    info_.hdr = h;
    info_.file_size = src_.size();
    return read_appended();
  }

 private:
  const header& h() const { return info_.hdr; }

  // Reads up to n bytes, folding them into the running CRC state and handing
  // them to sink at most one chunk at a time. got < n means the data ended.
  error pump(std::uint64_t n, std::uint64_t& got, sink_ref sink) {
    got = 0;
    while (got < n) {
      // In the appended area no more than one byte past the limit is read.
      const std::uint64_t at = src_.pos();
      std::uint64_t ask = n - got;
      if (appended_limit_ != no_limit && appended_limit_ + 1 - at < ask) ask = appended_limit_ + 1 - at;
      const io_view v = src_.next(ask);
      if (v.r.status != io_status::ok) return io_failure(where_, at, v.r);
      const std::size_t k = v.r.bytes;
      if (k == 0) break;
      // The appended-area limit fires as soon as it is passed, before the
      // bytes are kept, whichever section is being parsed.
      if (src_.pos() > appended_limit_) return make_error(errc::limit_exceeded, section::appended, appended_limit_);
      crc_.add(v.data, k, opt_.threads);  // a large view (bytes in memory) on opt.threads threads
      error stopped{};                    // what the sink returned
      for (std::size_t off = 0; off < k && !stopped; off += chunk_)
        stopped = deliver(sink, v.data + off, clamp_size(k - off, chunk_));
      if (stopped) return stopped;
      got += k;
    }
    return {};
  }

  // Reads n payload bytes straight into dst, one slice at a time, and
  // checksums each slice while it is still in cache. got < n: data ended.
  error pump_into(std::uint8_t* dst, std::uint64_t n, std::uint64_t& got) {
    constexpr std::size_t slice = std::size_t{256} << 10;
    got = 0;
    while (got < n) {
      const std::size_t want = clamp_size(n - got, slice);
      std::uint8_t* at = dst + got;
      const io_result r = src_.read_into(at, want);
      if (r.status != io_status::ok) return io_failure(where_, src_.pos(), r);
      crc_.add(at, r.bytes);
      got += r.bytes;
      if (r.bytes < want) break;
    }
    return {};
  }

  // Reads the n payload bytes at src_.pos() in parts on threads of their own (see
  // parallel_parts), each with positioned reads of parallel_read_bytes into
  // dst + its offset (loading) or into a buffer of its own (verifying),
  // checksummed while they are in cache; the parts' CRCs are joined with
  // crc32c_combine. got < n: the data ended.
  template <class Tick>
  error pump_parallel(std::uint8_t* dst, std::uint64_t n, std::uint64_t& got, Tick&& tick) {
    constexpr std::size_t parallel_read_bytes = std::size_t{256} << 10;
    struct part {
      std::uint64_t from = 0, length = 0, got = 0;
      std::uint32_t crc = 0;
      io_result failed{};
      byte_buffer buf;
    };
    const std::size_t parts = parallel_parts(n, opt_.threads);
    part p[64];
    const std::uint64_t base = src_.pos();
    S& s = src_.stream();
    for (std::size_t i = 0; i < parts; ++i) {
      p[i].from = i * (n / parts);
      p[i].length = i + 1 == parts ? n - p[i].from : n / parts;
      if (dst == nullptr) p[i].buf.reserve(parallel_read_bytes);  // here: a job must not allocate
    }
    auto job = [&](std::size_t i) {
      part& q = p[i];
      while (q.got < q.length) {
        const std::size_t k = clamp_size(q.length - q.got, parallel_read_bytes);
        std::uint8_t* at = dst != nullptr ? dst + q.from + q.got : q.buf.data();
        const io_result r = read_fully_at(s, at, k, base + q.from + q.got);
        q.crc = crc32c_extend(q.crc, at, r.bytes);
        q.got += r.bytes;
        tick(std::uint64_t{r.bytes});
        if (r.status != io_status::ok) q.failed = r;
        if (r.status != io_status::ok || r.bytes < k) break;
      }
    };
    run_parts(parts, job);
    got = 0;
    for (std::size_t i = 0; i < parts; ++i) {
      crc_.join(p[i].crc, p[i].got);
      got += p[i].got;
      if (p[i].failed.status != io_status::ok)
        return io_failure(section::payload, base + got - p[i].failed.bytes, p[i].failed);
      if (p[i].got < p[i].length) break;  // the data ended: no byte of a later part counts
    }
    src_.skip(got);
    return {};
  }

  // Verifying and loading read the payload in parallel parts from a source
  // that can; a consumer gets the bytes in order.
  template <class Consumer>
  static constexpr bool parts_possible = has_parallel_reads<S>::value && (is_payload_progress<Consumer>::value ||
                                                                          is_payload_placement<Consumer>::value);

  // True when the payload is read in parts: possible, more than one thread
  // asked for, and a payload large enough for two parts.
  template <class Consumer>
  bool payload_in_parts(const Consumer&) {
    if constexpr (parts_possible<Consumer>)
      return opt_.threads > 1 && parallel_parts(h().payload_bytes, opt_.threads) > 1 &&
             stream_traits<S>::parallel_reads(src_.stream());
    else
      return false;
  }

  template <class Consumer>
  error read_payload_in_parts(Consumer& consume, std::uint64_t& got) {
    if constexpr (parts_possible<Consumer>) {
      std::uint8_t* dst = nullptr;
      if constexpr (is_payload_placement<Consumer>::value) {
        dst = consume.place(static_cast<const file_info&>(info_));
        if (dst == nullptr) return make_error(errc::invalid_argument, section::payload, h().payload_offset());
      }
      auto tick = [&](std::uint64_t k) {
        if constexpr (is_payload_progress<Consumer>::value) consume.progress(k);
        (void)k;
      };
      if (error e = pump_parallel(dst, h().payload_bytes, got, tick)) return e;
      if (scan_ && got == h().payload_bytes) return scan_at(*scan_);
    }
    (void)consume, (void)got;
    return {};
  }

  // Reads exactly n bytes into dst, or reports truncated at the end of data.
  error take(void* dst, std::size_t n) {
    std::uint64_t got = 0;
    auto* out = static_cast<std::uint8_t*>(dst);
    if (error e = pump(n, got, [&](const std::uint8_t* p, std::size_t k) {
          std::memcpy(out, p, k);
          out += k;
        }))
      return e;
    return got < n ? make_error(errc::truncated, where_, src_.pos()) : error{};
  }

  // Reads exactly n bytes appended to str (grown as bytes arrive, so a lying
  // length never allocates more than the data holds).
  error take(std::string& str, std::uint64_t n) {
    std::uint64_t got = 0;
    if (error e = pump(n, got,
                       [&](const std::uint8_t* p, std::size_t k) { str.append(reinterpret_cast<const char*>(p), k); }))
      return e;
    return got < n ? make_error(errc::truncated, where_, src_.pos()) : error{};
  }

  // Reads exactly n bytes of a tool-map string into str when the caller
  // keeps sections, else checksums and drops them.
  error take_section_bytes(std::string& str, std::uint64_t n) {
    if (opt_.keep_sections) return take(str, n);
    std::uint64_t got = 0;
    if (error e = pump(n, got, [](const std::uint8_t*, std::size_t) {})) return e;
    return got < n ? make_error(errc::truncated, where_, src_.pos()) : error{};
  }

  void begin(section where) {
    where_ = where;
    crc_.begin(where == section::text       ? &info_.computed[0]
               : where == section::payload  ? &info_.computed[1]
               : where == section::appended ? &info_.computed[2]
                                            : nullptr);
  }

  error read_header() {
    begin(section::header);
    std::uint8_t b[layout::header_v2::size];
    std::size_t have = 0;
    auto into = [&](const std::uint8_t* p, std::size_t k) {
      std::memcpy(b + have, p, k);
      have += k;
    };
    std::uint64_t got = 0;
    if (error e = pump(4, got, into)) return e;
    const std::size_t need = have == 4 ? header_size_for(b) : 0;
    if (need != 0)
      if (error e = pump(need - 4, got, into)) return e;
    auto decoded = decode_header(b, have);
    if (!decoded) return decoded.error();
    info_.hdr = *decoded;
    info_.stage = read_stage::header_decoded;
    return validate_header(h(), b, info_.file_size, opt_.limits);
  }

  error read_text() {
    begin(section::text);
    if (info_.file_size != unknown_size) info_.text.reserve(h().text_bytes);  // checked against the size
    if (error e = take(info_.text, h().text_bytes)) return e;
    if (h().version == 2 && crc_.value() != h().text_crc)
      return make_error(errc::text_crc_mismatch, section::text, h().text_offset());
    return {};
  }

  void begin_payload() {
    begin(section::payload);
    const bool check = opt_.dsv4_model != nullptr && (h().payload_abi == 0 || h().payload_abi == payload_abi_ds4);
    if (check) scan_.emplace(*opt_.dsv4_model, h());
    payload_got_ = 0;
  }

  // The payload at once, before finish(): to a consumer in chunks, into the
  // memory a placement gives, or in parts on several threads.
  template <class Consumer>
  error read_payload(Consumer& consume) {
    std::uint64_t got = 0;
    if (payload_in_parts(consume)) {
      if (error e = read_payload_in_parts(consume, got)) return e;
    } else if constexpr (is_payload_placement<Consumer>::value) {
      std::uint8_t* dst = consume.place(static_cast<const file_info&>(info_));
      if (dst == nullptr) return make_error(errc::invalid_argument, section::payload, h().payload_offset());
      if (error e = pump_into(dst, h().payload_bytes, got)) return e;
      if (scan_) scan_->feed(dst, static_cast<std::size_t>(got));
    } else {
      if (error e = pump(h().payload_bytes, got, [&](const std::uint8_t* p, std::size_t k) {
            if (scan_) scan_->feed(p, k);
            return deliver(consume, p, k);
          }))
        return e;
    }
    payload_got_ = got;
    if (got < h().payload_bytes) return make_error(errc::truncated, section::payload, src_.pos());
    return {};
  }

  // The payload's checks once every byte was read: length, CRC, DSV4.
  error end_payload() {
    if (payload_got_ < h().payload_bytes) return make_error(errc::truncated, section::payload, src_.pos());
    if (h().version == 2 && crc_.value() != h().payload_crc)
      return make_error(errc::payload_crc_mismatch, section::payload, h().payload_offset());
    if (scan_) {
      if (error e = scan_->finish(info_.dsv4)) return e;
      info_.dsv4_checked = true;
    }
    return {};
  }

  // Level sections: past the payload without reading it where the source
  // can skip (the file size, checked at level header, says it is there),
  // else read through unchecked; then the appended sections.
  error skip_payload() {
    const std::uint64_t n = h().payload_bytes;
    bool skipped = false;
    if constexpr (has_parallel_reads<S>::value) {
      if (info_.file_size != unknown_size) {
        src_.skip(n);
        skipped = true;
      }
    }
    // A source that cannot read at an offset is read through, unchecked.
    for (std::uint64_t got = 0; !skipped && got < n;) {
      const std::uint64_t at = src_.pos();
      const io_view v = src_.next(n - got);
      if (v.r.status != io_status::ok) return io_failure(section::payload, at, v.r);
      if (v.r.bytes == 0) return make_error(errc::truncated, section::payload, src_.pos());
      got += v.r.bytes;
    }
    if (error e = read_appended()) return e;
    info_.stage = read_stage::sections;
    return {};
  }

  // The DSV4 check of a payload read in parts: its header and count arrays
  // read again with read_at (they are in the page cache), the rest skipped.
  error scan_at(dsv4_scanner& scan) {
    const std::uint64_t base = h().payload_offset(), n = h().payload_bytes;
    std::vector<std::uint8_t> head(clamp_size(n, layout::dsv4::size));
    io_result r = read_fully_at(src_.stream(), head.data(), head.size(), base);
    if (r.status != io_status::ok) return io_failure(section::payload, base, r);
    scan.take_head(0, head.data(), r.bytes);
    const auto [at, length] = scan.counts();
    if (length != 0 && at < n) {
      std::vector<std::uint8_t> counts(clamp_size(n - at, length));
      r = read_fully_at(src_.stream(), counts.data(), counts.size(), base + at);
      if (r.status != io_status::ok) return io_failure(section::payload, base + at, r);
      scan.take_counts(at, counts.data(), r.bytes);
    }
    scan.skip_to(n);
    return {};
  }

  error read_tool_map() {
    const limits& lim = opt_.limits;
    where_ = section::tool_map;
    info_.has_tool_map = true;
    std::uint8_t b[layout::tool_map::size];
    const std::uint64_t at = src_.pos();
    if (error e = take(b, sizeof b)) return e;
    const auto tm = decode_tool_map_header(b, at, lim);
    if (!tm) return tm.error();
    for (std::uint32_t i = 0; i < tm->count; ++i) {
      std::uint8_t eb[layout::tool_entry_header::size];
      const std::uint64_t entry_at = src_.pos();
      if (error e = take(eb, sizeof eb)) return e;
      const auto te = decode_tool_entry_header(eb, entry_at, lim);
      if (!te) return te.error();
      tool_entry entry;
      if (error e = take_section_bytes(entry.id, te->id_bytes)) return e;
      if (error e = take_section_bytes(entry.dsml, te->dsml_bytes)) return e;
      if (opt_.keep_sections) info_.tools.push_back(std::move(entry));
    }
    return {};
  }

  error read_title() {
    where_ = section::title;
    info_.has_title = true;
    std::uint8_t b[layout::title::size];
    const std::uint64_t at = src_.pos();
    if (error e = take(b, sizeof b)) return e;
    const auto n = decode_title_header(b, at, opt_.limits);
    if (!n) return n.error();
    return take(info_.title, *n);  // kept always: a titled file's identity needs it
  }

  // Parses the sections in bit order while the sections CRC runs over every
  // byte to the end; in v2 a CRC mismatch outranks any structural error.
  error read_appended() {
    begin(section::appended);
    const std::uint64_t start = src_.pos();
    const std::uint64_t max = opt_.limits.max_appended_bytes;
    const auto too_big = make_error(errc::limit_exceeded, section::appended, start + max);
    if (info_.file_size != unknown_size && info_.file_size - start > max) return too_big;
    appended_limit_ = max >= no_limit - start ? no_limit : start + max;
    const std::uint8_t flags = h().ext_flags;
    info_.unknown_sections = (flags & ~ext::known) != 0;
    error found{};
    if (flags & ext::tool_map) found = read_tool_map();
    if (!found && (flags & ext::title)) found = read_title();
    if (found.code == errc::io_error || found == too_big) return found;
    if (h().version == 1 && found) return found;
    // Drain to the end: trailing bytes, the opaque unknown sections, or the
    // rest of a damaged area whose CRC decides the verdict.
    where_ = section::appended;
    const std::uint64_t rest_at = src_.pos();
    // Up to the end of the data; pump stops at the appended-area limit.
    const std::uint64_t want = h().version == 1 && !info_.unknown_sections ? 1 : no_limit;
    std::uint64_t got = 0;
    if (error e = pump(want, got, [](const std::uint8_t*, std::size_t) {})) return e;
    if (info_.unknown_sections && !found) {
      info_.unknown_offset = rest_at;
      info_.unknown_bytes = got;
    }
    if (h().version == 2 && crc_.value() != h().sections_crc)
      return make_error(errc::sections_crc_mismatch, section::appended, start);
    if (found) return found;
    if (got > 0 && !info_.unknown_sections) return make_error(errc::trailing_bytes, section::appended, rest_at);
    return {};
  }

  byte_source<S> src_;
  const read_options& opt_;
  file_info& info_;
  std::size_t chunk_;  // payload bytes per consumer call
  region_crc crc_;
  static constexpr std::uint64_t no_limit = (std::numeric_limits<std::uint64_t>::max)();
  std::uint64_t appended_limit_ = no_limit;  // the last byte allowed, set in the appended area
  std::optional<dsv4_scanner> scan_;         // the DSV4 check, when asked for
  std::uint64_t payload_got_ = 0;            // payload bytes read so far
  section where_ = section::header;
};
}  // namespace detail

// Reads a file from a sequential source at opt.level, handing the payload to
// consume(const std::uint8_t*, std::size_t) chunk by chunk (level full only).
// consume returns void, or kvc::error: an error stops the read, and read
// returns that error as it is.
// For a v2 file the payload CRC is known only when read returns: a consumer
// that loads live state must stage it and commit only on success (spec
// "Restoring state"); to load in a second pass instead, call verify first.
template <class Source, class Consumer>
error read(Source& src, file_info& info, Consumer&& consume, const read_options& opt = {}) {
  KVC_REQUIRE_STREAM(has_read, Source, "read(S&, void*, std::size_t) -> kvc::io_result");
  detail::file_reader<Source> r(src, opt, info);
  return r.run(consume);
}

// Verifies a file at opt.level without keeping the payload; a large payload
// from a source that can read in parallel (kvc::file_source) is read in
// parts on opt.threads threads. progress(std::uint64_t n), when given, hears
// of every n more payload bytes checked, possibly from several threads at
// once (say, for a progress bar).
template <class Source, class Progress>
error verify(Source& src, file_info& info, const read_options& opt, Progress&& progress) {
  detail::payload_progress<std::remove_reference_t<Progress>> counted{progress};
  return read(src, info, counted, opt);
}
template <class Source>
error verify(Source& src, file_info& info, const read_options& opt = {}) {
  return verify(src, info, opt, [](std::uint64_t) noexcept {});
}

// Loads a file's payload straight into memory the caller provides: one copy
// (each slice is checksummed while it is still in cache) instead of a copy
// into kvc's buffer and another into the caller's. Once the header and text
// passed, place(const file_info&) -> std::uint8_t* returns where the
// info.hdr.payload_bytes bytes go (already checked against the file size
// and opt.limits), or nullptr to stop with invalid_argument. Reads level
// full whatever opt.level says. The bytes in that memory are the file's
// only when this returns no error: stage them there, commit on success
// (spec "Restoring state"); on error they are partial or unverified.
template <class Source, class Place>
error load(Source& src, file_info& info, Place&& place, const read_options& opt = {}) {
  KVC_REQUIRE_STREAM(has_read, Source, "read(S&, void*, std::size_t) -> kvc::io_result");
  read_options full = opt;
  full.level = verify_level::full;
  detail::payload_placement<std::remove_reference_t<Place>> placement{place};
  detail::file_reader<Source> r(src, full, info);
  return r.run(placement);
}

// Pull reading, for an engine that restores state as it asks for bytes:
// open() reads and checks the header and the text; read(p, n) hands over the
// next payload bytes (0 at the end), as often as the engine likes, or
// read_all(dst) the whole payload at once (in parts on opt.threads threads
// where the source can); finish() reads what is left of the payload
// (checked, not kept) and gives the verdict on the whole file: payload CRC,
// DSV4 check, appended sections, as kvc::read at level full. Until finish()
// succeeds the bytes are unverified: restore into scratch state and commit
// only then (spec "Restoring state"). An error is final: every later call
// returns it; a call out of order is invalid_argument.
template <class Source>
class payload_reader {
 public:
  payload_reader(Source& src, file_info& info, const read_options& opt = {})
      : opt_(at_level_full(opt)), r_(src, opt_, info) {
    KVC_REQUIRE_STREAM(has_read, Source, "read(S&, void*, std::size_t) -> kvc::io_result");
  }
  payload_reader(const payload_reader&) = delete;
  payload_reader& operator=(const payload_reader&) = delete;

  error open() {
    if (state_ != state::created) return fail(make_error(errc::invalid_argument, section::none, 0));
    state_ = state::reading;
    return fail(r_.open());
  }

  result<std::size_t> read(void* p, std::size_t n) {
    if (state_ != state::reading || (p == nullptr && n != 0))
      return fail(make_error(errc::invalid_argument, section::payload, 0));
    std::size_t got = 0;
    if (error e = fail(r_.pull(static_cast<std::uint8_t*>(p), n, got))) return e;
    pulled_ = pulled_ || got != 0;
    return got;
  }

  error read_all(void* dst) {
    if (state_ != state::reading || pulled_ || dst == nullptr)
      return fail(make_error(errc::invalid_argument, section::payload, 0));
    pulled_ = true;
    auto place = [dst](const file_info&) { return static_cast<std::uint8_t*>(dst); };
    detail::payload_placement<decltype(place)> placement{place};
    return fail(r_.read_payload(placement));
  }

  error finish() {
    if (state_ != state::reading) return fail(make_error(errc::invalid_argument, section::none, 0));
    state_ = state::finished;
    return fail(r_.finish());
  }

 private:
  enum class state : std::uint8_t { created, reading, finished, failed };
  static read_options at_level_full(read_options o) noexcept {
    o.level = verify_level::full;
    return o;
  }
  // Records e (an error ends the reader) and returns it.
  error fail(error e) noexcept {
    if (state_ == state::failed) return failed_;
    if (e) {
      state_ = state::failed;
      failed_ = e;
    }
    return e;
  }

  read_options opt_;
  detail::file_reader<Source> r_;
  state state_ = state::created;
  bool pulled_ = false;
  error failed_{};
};

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
