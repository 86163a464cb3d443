#pragma once

// MappedPage: one page of memory shared between processes through a memfd, and the owner of both the
// descriptor and the mapping. The reactor creates the page (writable, its size sealed so that no handler can
// shrink it under the reactor: SIGBUS); a process that inherits the descriptor maps it. SharedState and
// AnswerRecord are pages of this kind with their own layouts.

#include <cstddef>
#include <system_error>

#include "ipc/unique_fd.hpp"

namespace handoff::ipc {

class MappedPage {
 public:
  static constexpr size_t kBytes = 4096;

  MappedPage() = default;
  ~MappedPage();
  MappedPage(MappedPage&& other) noexcept;
  MappedPage& operator=(MappedPage&& other) noexcept;
  MappedPage(const MappedPage&) = delete;
  MappedPage& operator=(const MappedPage&) = delete;

  // Who may write the page besides its creator, through the descriptor it hands over.
  enum class Others { kMayWrite, kReadOnly };

  // A new zeroed page named name (as /proc/PID/fd shows it), mapped writable; its descriptor is close-on-exec
  // (a child gets it only where it is handed over). With kReadOnly the page is sealed against every write but
  // through this mapping (F_SEAL_FUTURE_WRITE, memfd_create(2)): a process that inherits the descriptor can
  // map it only read-only. The failed call is returned as its errno.
  static std::error_code create(const char* name, Others others, MappedPage& out);
  // The page behind fd, mapped read-only or writable. fd is closed once mapped: code that the mapping process
  // starts does not inherit it.
  static std::error_code map(UniqueFd fd, bool writable, MappedPage& out);

  bool valid() const { return data_ != nullptr; }
  void* data() const { return data_; }
  // The memfd, borrowed; invalid in a process that mapped an inherited page.
  int descriptor() const { return fd_.get(); }

 private:
  void unmap();

  UniqueFd fd_;
  void* data_ = nullptr;
};

}  // namespace handoff::ipc
