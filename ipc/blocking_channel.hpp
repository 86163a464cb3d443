#pragma once

// BlockingChannel: one end of a reactor<->handler channel used with blocking calls, as a handler uses it.
// It reads exactly one frame at a time, so that a descriptor is always received with the header it belongs to.

#include <system_error>
#include <vector>

#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"

namespace handoff::ipc {

class BlockingChannel {
 public:
  explicit BlockingChannel(UniqueFd socket) : socket_(std::move(socket)) {}

  int fd() const { return socket_.get(); }

  // Sends the whole frame (and message.descriptor, if set, attached to its first byte).
  std::error_code send(const Message& message);

  // Receives the next frame into message. Errc::kPeerClosed when the peer closed the channel between frames.
  // A frame that breaks the wire format is an error; any descriptor that came with it is closed.
  std::error_code receive(Message& message);

 private:
  std::error_code receive_exactly(char* data, size_t size, std::vector<UniqueFd>& received);

  UniqueFd socket_;
};

}  // namespace handoff::ipc
