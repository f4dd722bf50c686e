// Path-level operations (spec sections 14 and 15): temporaries, file types,
// modes, links, locking, title renames, honest outcomes.
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "../kvc_test.hpp"
#include "files_util.hpp"

using namespace kvc_files_test;

TEST_CASE("temporaries: the documented pattern, listed and removed by age", "[files][temporaries]") {
  const scratch_dir d;
  write_bytes(d.path + "/a.kv", small_file());
  write_bytes(d.path + "/a.kv.tmp.123.0123456789ab", "x");    // kvc's
  write_bytes(d.path + "/b.kv.tmp.456", "yy");                 // ds4's
  write_bytes(d.path + "/young.kv.tmp.789.ffffffffffff", "z");  // too young below
  write_bytes(d.path + "/c.kv.tmpx", "no");                     // not the pattern
  write_bytes(d.path + "/.kv.tmp.1", "no");                     // no name before .kv
  REQUIRE(::mkdir((d.path + "/dir.kv.tmp.1").c_str(), 0700) == 0);       // not a regular file
  REQUIRE(::symlink("a.kv", (d.path + "/link.kv.tmp.1").c_str()) == 0);  // not a regular file
  for (const char* old : {"/a.kv.tmp.123.0123456789ab", "/b.kv.tmp.456"}) set_mtime(d.path + old, 1000000000);

  auto old_only = kvc::list_temporaries(d.path, 3600);
  REQUIRE(old_only);
  std::vector<std::string> names;
  for (const auto& t : *old_only) names.push_back(t.path);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{d.path + "/a.kv.tmp.123.0123456789ab", d.path + "/b.kv.tmp.456"});
  for (const auto& t : *old_only) {
    CHECK(t.modified_unix == 1000000000);
    CHECK(t.bytes == (t.path.back() == '6' ? 2u : 1u));
  }
  auto all = kvc::list_temporaries(d.path, 0);
  REQUIRE(all);
  CHECK(all->size() == 3);

  auto removed = kvc::remove_temporaries(d.path, 3600);
  REQUIRE(removed);
  CHECK(*removed == 2);
  CHECK(listing(d.path) == std::vector<std::string>{".kv.tmp.1", "a.kv", "c.kv.tmpx", "dir.kv.tmp.1",
                                                    "link.kv.tmp.1", "young.kv.tmp.789.ffffffffffff"});
  CHECK(kvc::list_temporaries(d.path + "/missing", 0).error().os_error == ENOENT);
}

TEST_CASE("temporaries: a leftover with this process's name does not block a save", "[files][temporaries]") {
  const scratch_dir d;
  const std::string path = d.path + "/a.kv";
  // Fill the name space a counter-based scheme would use next.
  for (int i = 0; i < 64; ++i)
    write_bytes(path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(i), "stale");
  REQUIRE(save_small(path));
  CHECK(verifies(path));
  CHECK(kvc::list_temporaries(d.path, 0)->size() == 64);
}
