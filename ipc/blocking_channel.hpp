#pragma once

// BlockingChannel: one end of a reactor<->handler channel used with blocking calls, as a handler uses it.
// It reads as much as is there (one recvmsg per frame in the common case). A descriptor travels with the
// first byte of its frame, and recvmsg stops after the bytes of the write that carried one, so a descriptor
// belongs to the first frame that carries one (kConnection) among the frames not returned yet: frames without
// one may come before it in the same read (a late kReclaim, then the next kConnection). A descriptor that no
// such frame can take — a second one, or one that came with a frame that carries none — is refused.

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
  // Reads until inbox_ holds size bytes, keeping a descriptor that comes in pending_descriptor_.
  std::error_code fill_to(size_t size);

  UniqueFd socket_;
  std::string inbox_;            // Received bytes not yet returned as a message.
  UniqueFd pending_descriptor_;  // Received with bytes of inbox_, for the next frame that carries one.
};

}  // namespace handoff::ipc
