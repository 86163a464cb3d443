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
    const IoResult result =
        send_with_descriptor(socket_.get(), std::span(frame).subspan(offset), descriptor);
    if (result.error) return result.error;
    offset += result.bytes;
    descriptor = -1;  // Attached to the first chunk only.
  }
  return {};
}

std::error_code BlockingChannel::receive_exactly(char* data, size_t size, std::vector<UniqueFd>& received) {
  size_t offset = 0;
  while (offset < size) {
    const IoResult result =
        receive_with_descriptors(socket_.get(), std::span(data + offset, size - offset), received);
    if (result.error) return result.error;
    if (result.bytes == 0) return offset == 0 ? Errc::kPeerClosed : Errc::kTruncatedFrame;
    offset += result.bytes;
  }
  return {};
}

std::error_code BlockingChannel::receive(Message& message) {
  std::vector<UniqueFd> received;
  Header header;
  if (auto error = receive_exactly(reinterpret_cast<char*>(&header), sizeof(header), received)) return error;
  if (auto error = check_header(header)) return error;

  message.type = static_cast<MessageType>(header.type);
  message.connection_id = header.connection_id;
  message.flags = header.flags;
  message.payload.resize(header.payload_size);
  if (auto error = receive_exactly(message.payload.data(), header.payload_size, received)) {
    return error == Errc::kPeerClosed ? Errc::kTruncatedFrame : error;
  }

  if (carries_descriptor(message.type)) {
    if (received.empty()) return Errc::kMissingDescriptor;
    if (received.size() > 1) return Errc::kUnexpectedDescriptor;
    message.descriptor = std::move(received.front());
  } else if (!received.empty()) {
    return Errc::kUnexpectedDescriptor;
  }
  return {};
}

}  // namespace handoff::ipc
