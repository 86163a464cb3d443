#pragma once

// BlockingChannel: one end of a reactor<->handler channel used with blocking calls, as a handler uses it.
// It reads as much as is there (one recvmsg per frame in the common case). A descriptor travels with the
// first byte of its frame, and recvmsg stops after the bytes that carry one, so a descriptor received at a
// frame boundary belongs to that frame; one that arrives together with bytes of a second frame cannot be
// placed, and is refused. The reactor never sends a second frame before the handler's kDone, so that does not
// happen.

#include <string>
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
  // Reads more into inbox_; Errc::kPeerClosed at EOF.
  std::error_code fill(std::vector<UniqueFd>& received);

  UniqueFd socket_;
  std::string inbox_;  // Received bytes not yet returned as a message.
};

}  // namespace handoff::ipc
