// Compiled once per configuration with -DKVC_PROBE=<function name>.
#include "probe.hpp"

#include <kvc/kvc.hpp>
#include <string>
#include <vector>

probe_result KVC_PROBE() {
  probe_result r{};
  r.kernels = kvc::crc32c_kernels().size();
  r.active = kvc::crc32c_active_kernel();
  r.sha1_kernels = kvc::sha1_kernels().size();
  r.crc_check = kvc::crc32c("123456789", 9);
  r.crc_buffer = kvc::crc32c(probe_buffer(), probe_buffer_size);
  std::vector<std::uint8_t> file;
  kvc::header h;
  h.tokens = 1;
  auto w = kvc::begin_write(file, h, "probe");
  if (!w || w->write_payload(probe_buffer(), 1000) || !w->finish()) return r;
  kvc::memory_stream m(file);
  kvc::file_info info;
  r.file_verifies = !kvc::verify(m, info) && info.text == "probe";
  return r;
}
