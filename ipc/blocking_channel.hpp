#pragma once

// BlockingChannel: one end of a reactor<->handler channel used with blocking calls, as a handler uses it.
// It reads as much as is there (one recvmsg for all the frames of a write in the common case). Descriptors
// travel with the first byte of the write that carries their frames, in the order of those frames (several
// frames to a handler that says ipc::kCanTakeBatches), and recvmsg stops after the bytes of a write that
// carried any, so a descriptor belongs to the first frame that carries one (kConnection) among the frames not
// returned yet: frames without one may come before it in the same read (a late kReclaim, then the next
// kConnection), and the next frame's descriptor may come with the end of a long one (a connection sent ahead
// behind a large request). So the descriptors wait in order, each for the next frame that carries one, and
// where a read ends tells nothing of whose they are. More than the reactor ever has in flight are refused;
// any still waiting when the channel ends are closed.

#include <deque>
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

  // Waits for frames in poll(2), not in recvmsg: a reader asleep in recvmsg on a Unix stream socket is woken
  // whenever the peer reads what this end sent (unix_write_space wakes every sleeper on the socket), only to
  // sleep again; one asleep in poll for POLLIN is woken by input only. A handler waits so between hand-offs,
  // and the reactor's read of each report no longer costs it a wake-up. For a blocking socket.
  void wait_in_poll() { wait_in_poll_ = true; }

  // Sends the whole frame (and message.descriptor, if set, attached to its first byte).
  std::error_code send(const Message& message);

  // Receives the next frame into message. Errc::kPeerClosed when the peer closed the channel between frames.
  // A frame that breaks the wire format is an error; any descriptor that came with it is closed. On a
  // non-blocking socket (a takeover's new reactor reads it so, on its loop) a frame not all there yet is
  // resource_unavailable_try_again, and what came of it is kept for the next call.
  std::error_code receive(Message& message);

 private:
  // Reads more into inbox_; Errc::kPeerClosed at EOF.
  std::error_code fill(std::vector<UniqueFd>& received);
  // Reads until inbox_ holds size bytes, keeping descriptors that come in pending_descriptors_.
  std::error_code fill_to(size_t size);

  // Two writes' worth (the reactor batches frames, ipc::kCanTakeBatches): frames sent ahead and withdrawn
  // that it has not read past yet (7 at most), and the next write's (8 at most).
  static constexpr size_t kMaxPendingDescriptors = 2 * kMaxDescriptorsPerWrite;

  UniqueFd socket_;
  bool wait_in_poll_ = false;
  std::string inbox_;  // Received bytes not yet returned as a message.
  // Received with bytes of inbox_, in order, each for the next frame that carries one.
  std::deque<UniqueFd> pending_descriptors_;
};

}  // namespace handoff::ipc
