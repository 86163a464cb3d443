#include "ipc/blocking_channel.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "ipc/socket_io.hpp"

namespace handoff::ipc {

std::error_code BlockingChannel::send(const Message& message) {
  const std::string frame = encode(message);
  size_t offset = 0;
  int descriptor = message.descriptor.get();
  while (offset < frame.size()) {
    const IoResult result = send_with_descriptor(socket_.get(), std::span(frame).subspan(offset), descriptor);
    if (result.error) return result.error;
    offset += result.bytes;
    descriptor = -1;  // Attached to the first chunk only.
  }
  return {};
}

std::error_code BlockingChannel::fill(std::vector<UniqueFd>& received) {
  char chunk[64 * 1024];
  IoResult result =
      receive_with_descriptors(socket_.get(), chunk, received, wait_in_poll_ ? MSG_DONTWAIT : 0);
  while (wait_in_poll_ && result.would_block()) {
    pollfd readable{.fd = socket_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&readable, 1, -1) < 0 && errno != EINTR) return {errno, std::system_category()};
    result = receive_with_descriptors(socket_.get(), chunk, received, MSG_DONTWAIT);
  }
  if (result.error) return result.error;
  if (result.bytes == 0) return Errc::kPeerClosed;
  inbox_.append(chunk, result.bytes);
  return {};
}

std::error_code BlockingChannel::fill_to(size_t size) {
  while (inbox_.size() < size) {
    std::vector<UniqueFd> received;  // Closed here when refused.
    if (auto error = fill(received)) return error;
    if (received.size() + pending_descriptors_.size() > kMaxPendingDescriptors) {
      return Errc::kUnexpectedDescriptor;
    }
    for (UniqueFd& descriptor : received) pending_descriptors_.push_back(std::move(descriptor));
  }
  return {};
}

std::error_code BlockingChannel::receive(Message& message) {
  if (auto error = fill_to(sizeof(Header))) {
    if (error != Errc::kPeerClosed) return error;
    pending_descriptors_.clear();  // No frame will take them.
    return inbox_.empty() ? error : Errc::kTruncatedFrame;
  }
  Header header;
  std::memcpy(&header, inbox_.data(), sizeof(header));
  if (auto error = check_header(header)) return error;
  const size_t frame_size = sizeof(Header) + header.payload_size;
  if (auto error = fill_to(frame_size)) return error == Errc::kPeerClosed ? Errc::kTruncatedFrame : error;

  message.type = static_cast<MessageType>(header.type);
  message.connection_id = header.connection_id;
  message.flags = header.flags;
  message.payload.assign(inbox_, sizeof(Header), header.payload_size);
  inbox_.erase(0, frame_size);

  if (carries_descriptor(message.type, message.flags)) {
    if (pending_descriptors_.empty()) return Errc::kMissingDescriptor;
    message.descriptor = std::move(pending_descriptors_.front());
    pending_descriptors_.pop_front();
  }
  // A descriptor that waits while this frame carries none is a later frame's: a write's descriptors all come
  // with its first byte, and its first frames may carry none (a kept connection, a kForget).
  return {};
}

}  // namespace handoff::ipc
