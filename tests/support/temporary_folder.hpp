#pragma once

// Test support: a fresh folder of its own for the files a test writes (a handler script, a marker file),
// removed with the object; and the value of an environment variable the test runner sets.

#include <string>

namespace handoff::testing {

class TemporaryFolder {
 public:
  TemporaryFolder();
  ~TemporaryFolder();
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;

  // Writes text to the file name in the folder (executable for its owner if asked) and returns its path.
  std::string file(const std::string& name, const std::string& text, bool executable = false) const;
  std::string path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The variable's value; "" when it is not set.
std::string environment(const char* name);

}  // namespace handoff::testing
