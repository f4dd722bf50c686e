// The error enum, its std::error_code integration and the result type.
#include <kvc/kvc.hpp>
#include <set>
#include <string>

#include "kvc_test.hpp"

TEST_CASE("every errc has a distinct name and message", "[errors]") {
  std::set<std::string> names, messages;
  const int last = static_cast<int>(kvc::errc::invalid_argument);
  for (int v = 0; v <= last; ++v) {
    const auto e = static_cast<kvc::errc>(v);
    REQUIRE(std::string(kvc::errc_name(e)) != "unknown");
    names.insert(kvc::errc_name(e));
    messages.insert(kvc::errc_message(e));
  }
  CHECK(names.size() == static_cast<std::size_t>(last + 1));
  CHECK(messages.size() == static_cast<std::size_t>(last + 1));
  CHECK(std::string(kvc::errc_name(static_cast<kvc::errc>(last + 1))) == "unknown");
}

TEST_CASE("errc converts to std::error_code in the kvc category", "[errors]") {
  std::error_code ec = kvc::errc::payload_crc_mismatch;
  CHECK(ec.category().name() == std::string("kvc"));
  CHECK(ec.message() == "payload CRC32C mismatch");
  CHECK(ec == kvc::errc::payload_crc_mismatch);
  CHECK(ec != kvc::errc::text_crc_mismatch);
  CHECK_FALSE(std::error_code(kvc::errc::ok));
}

TEST_CASE("error and result carry code, section and offset", "[errors]") {
  const kvc::error none{};
  CHECK_FALSE(none);
  const kvc::error e = kvc::make_error(kvc::errc::truncated, kvc::section::payload, 1234);
  CHECK(e);
  CHECK(e.error_code() == kvc::errc::truncated);
  kvc::result<int> ok = 7;
  REQUIRE(ok);
  CHECK(*ok == 7);
  kvc::result<int> bad = e;
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == e);
  CHECK(std::string(kvc::section_name(bad.error().where)) == "payload");
}

TEST_CASE("a result never claims a value it was not given", "[errors]") {
  // An error that says ok is not a value: the result holds invalid_argument.
  constexpr kvc::result<int> from_ok = kvc::error{kvc::errc::ok, kvc::section::text, 9};
  static_assert(!from_ok.has_value());
  static_assert(from_ok.error().code == kvc::errc::invalid_argument);
  static_assert(from_ok.error().where == kvc::section::text && from_ok.error().offset == 9);
  // An OS cause travels with the error; equality is about the file, not it.
  const kvc::error io = kvc::make_error(kvc::errc::io_error, kvc::section::none, 5, 28);
  kvc::result<int> failed = io;
  CHECK(failed.error().os_error == 28);
  CHECK(failed.error() == kvc::make_error(kvc::errc::io_error, kvc::section::none, 5));
  // [[nodiscard]] on error, result and io_result: tests/compile_fail/ignored_error.cpp.
}
