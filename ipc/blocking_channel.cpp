#include "ipc/blocking_channel.hpp"

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
  const IoResult result = receive_with_descriptors(socket_.get(), chunk, received);
  if (result.error) return result.error;
  if (result.bytes == 0) return Errc::kPeerClosed;
  inbox_.append(chunk, result.bytes);
  return {};
}

std::error_code BlockingChannel::fill_to(size_t size) {
  while (inbox_.size() < size) {
    std::vector<UniqueFd> received;  // Closed here when refused.
    if (auto error = fill(received)) return error;
    if (received.empty()) continue;
    if (received.size() > 1 || pending_descriptor_) return Errc::kUnexpectedDescriptor;
    pending_descriptor_ = std::move(received.front());
  }
  return {};
}

std::error_code BlockingChannel::receive(Message& message) {
  if (auto error = fill_to(sizeof(Header))) {
    return error == Errc::kPeerClosed && !inbox_.empty() ? Errc::kTruncatedFrame : error;
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

  if (carries_descriptor(message.type)) {
    if (!pending_descriptor_) return Errc::kMissingDescriptor;
    message.descriptor = std::move(pending_descriptor_);
  } else if (pending_descriptor_ && inbox_.empty()) {
    // It came with this frame, or an earlier one: no frame of what was received can take it.
    pending_descriptor_.reset();
    return Errc::kUnexpectedDescriptor;
  }
  return {};
}

}  // namespace handoff::ipc
