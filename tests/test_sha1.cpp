// SHA-1 against the FIPS 180 examples and the identity names built on it.
#include <kvc/kvc.hpp>
#include <string>

#include "kvc_test.hpp"

namespace {
std::string sha1_hex(std::string_view s) { return kvc::sha1::hex(kvc::sha1{}.update(s).finish()); }
}  // namespace

TEST_CASE("SHA-1 FIPS 180 vectors", "[sha1]") {
  CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(sha1_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopq"
                 "rstnopqrstu") == "a49b2446a02c645bf419f995b67091253a04a259");
  kvc::sha1 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk);
  CHECK(kvc::sha1::hex(million.finish()) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_CASE("SHA-1 is independent of how the input is split", "[sha1]") {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7));
  const std::string whole = sha1_hex(data);
  for (std::size_t cut = 0; cut <= data.size(); cut += 13) {
    kvc::sha1 h;
    h.update(std::string_view(data).substr(0, cut)).update(std::string_view(data).substr(cut));
    CHECK(kvc::sha1::hex(h.finish()) == whole);
  }
}

TEST_CASE("SHA-1 runs in constant expressions", "[sha1]") {
  constexpr auto d = [] {
    const std::uint8_t abc[3] = {'a', 'b', 'c'};
    return kvc::sha1{}.update(abc, 3).finish();
  }();
  static_assert(d[0] == 0xa9 && d[19] == 0x9d);
  CHECK(d[1] == 0x99);
}

TEST_CASE("identity names", "[sha1][identity]") {
  CHECK(kvc::identity_name_for_text("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d.kv");
  // Title identity: SHA-1 of the title bytes then created_at as u64 LE.
  std::string msg = "My chat";
  const std::uint64_t created = 0x0102030405060708ull;
  for (int i = 0; i < 8; ++i) msg.push_back(static_cast<char>((created >> (8 * i)) & 0xFF));
  CHECK(kvc::identity_name_for_title("My chat", created) == sha1_hex(msg) + ".kv");
}
