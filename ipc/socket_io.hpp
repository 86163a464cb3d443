#pragma once

// The two system calls of the ipc channel, sendmsg and recvmsg with SCM_RIGHTS, wrapped once with every check
// (nginx's ngx_channel.c is the model): EINTR is retried, SIGPIPE never raised, control data validated.

#include <cstddef>
#include <span>
#include <system_error>
#include <vector>

#include "ipc/unique_fd.hpp"

namespace handoff::ipc {

struct IoResult {
  size_t bytes = 0;  // Bytes transferred; 0 with no error on receive means the peer closed the channel.
  std::error_code
      error;  // Empty on success; resource_unavailable_try_again when a non-blocking call would block.

  bool would_block() const { return error == std::errc::resource_unavailable_try_again; }
};

// Sends as much of bytes as the socket takes, with descriptors (at most kMaxDescriptorsPerWrite; none for an
// empty span) attached (SCM_RIGHTS) to the first byte, in order; the caller keeps its own copies.
IoResult send_with_descriptors(int socket, std::span<const char> bytes, std::span<const int> descriptors);
// The same with one descriptor, or none when descriptor_to_pass is negative.
IoResult send_with_descriptor(int socket, std::span<const char> bytes, int descriptor_to_pass);

// Receives up to buffer.size() bytes. Every descriptor that arrives is appended to received, owned and
// close-on-exec, even when the call then reports an error (MSG_CTRUNC: some descriptors were lost). flags
// are recvmsg's (MSG_DONTWAIT).
IoResult receive_with_descriptors(int socket, std::span<char> buffer, std::vector<UniqueFd>& received,
                                  int flags = 0);

}  // namespace handoff::ipc
