#pragma once

// Test support: the number of descriptors this process has open, to check that nothing leaked.

#include <dirent.h>

#include <cstddef>

namespace handoff::testing {

inline size_t open_descriptor_count() {
  DIR* folder = ::opendir("/proc/self/fd");
  size_t count = 0;
  while (const dirent* entry = ::readdir(folder)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(folder);
  return count - 1;  // The descriptor of the listing itself.
}

}  // namespace handoff::testing
