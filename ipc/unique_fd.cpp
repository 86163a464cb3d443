#include "ipc/unique_fd.hpp"

#include <unistd.h>

namespace handoff::ipc {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) {
    // On Linux the descriptor is released even when close() fails with EINTR, so it is never retried
    // (close(2), "Dealing with error returns from close()").
    ::close(fd_);
  }
  fd_ = fd;
}

}  // namespace handoff::ipc
