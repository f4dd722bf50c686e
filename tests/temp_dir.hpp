// A fresh directory under the system's temporary directory, removed with its
// contents at the end of the scope; portable (POSIX and Windows).
#pragma once
#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "kvc_test.hpp"

class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    REQUIRE_FALSE(ec);
    for (int attempt = 0; attempt < 100 && path_.empty(); ++attempt) {
      const std::filesystem::path p = base / ("kvc-test-" + std::to_string(rd()));
      if (std::filesystem::create_directory(p, ec)) path_ = p;
    }
    REQUIRE_FALSE(path_.empty());
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  // The directory as a path kvc's functions take, with '/' separators.
  std::string str() const { return path_.generic_string(); }
  // The names in the directory, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path path_;
};
