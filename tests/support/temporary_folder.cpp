#include "tests/support/temporary_folder.hpp"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace handoff::testing {

TemporaryFolder::TemporaryFolder() {
  char path[] = "/tmp/handoff-test-XXXXXX";
  if (::mkdtemp(path) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = path;
}

TemporaryFolder::~TemporaryFolder() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TemporaryFolder::file(const std::string& name, const std::string& text, bool executable) const {
  const std::string path = path_ + "/" + name;
  std::ofstream(path) << text;
  if (executable) std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace handoff::testing
