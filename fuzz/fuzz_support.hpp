#pragma once

// Internal to fuzz/. What the fuzz targets share: a check that holds in every build (assert may be compiled
// out; a fuzz target's oracle must not be), a deterministic way to cut an input into the pieces a socket
// might deliver, the count of open descriptors, and a connected socketpair.

#include <dirent.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ipc/unique_fd.hpp"

namespace handoff::fuzz {

// Aborts with the condition's text when it does not hold: libFuzzer keeps the input that did it.
#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// FNV-1a: a seed taken from the bytes themselves, for targets whose corpus is raw protocol bytes.
inline uint64_t hash_of(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : bytes) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

// The size of the next piece a stream socket might deliver, from state (splitmix64, which it advances):
// mostly 1 to 16 bytes, one piece in eight up to 4 KiB.
inline size_t next_piece_size(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (z & 7) == 0 ? 1 + (z >> 3) % 4096 : 1 + (z >> 3) % 16;
}

// Cuts bytes into consecutive pieces of those sizes. The same seed always gives the same cut.
inline std::vector<std::string_view> pieces_of(std::string_view bytes, uint64_t seed) {
  std::vector<std::string_view> pieces;
  while (!bytes.empty()) {
    const size_t size = std::min(next_piece_size(seed), bytes.size());
    pieces.push_back(bytes.substr(0, size));
    bytes.remove_prefix(size);
  }
  return pieces;
}

// The descriptors this process has open now (the directory's own excluded).
inline int open_descriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  FUZZ_CHECK(dir != nullptr);
  int count = 0;
  while (const dirent* entry = ::readdir(dir)) count += entry->d_name[0] != '.';
  ::closedir(dir);
  return count - 1;
}

struct SocketPair {
  ipc::UniqueFd first;
  ipc::UniqueFd second;
};

inline SocketPair stream_socketpair() {
  int ends[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
  return {ipc::UniqueFd(ends[0]), ipc::UniqueFd(ends[1])};
}

}  // namespace handoff::fuzz
