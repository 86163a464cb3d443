#include "ipc/frame_decoder.hpp"

#include <cstring>

namespace handoff::ipc {

std::optional<Message> FrameDecoder::next(std::error_code& error) {
  error.clear();
  if (buffered() < sizeof(Header)) return std::nullopt;

  Header header;
  std::memcpy(&header, buffer_.data() + consumed_, sizeof(header));
  if ((error = check_header(header))) return std::nullopt;
  // Only a request (kConnection, to a handler) may be larger than kMaxPayloadBytes, and no request travels
  // the way this decoder reads: a peer does not make the reactor hold more than a frame's worth.
  if (header.payload_size > kMaxPayloadBytes) {
    error = Errc::kFrameTooLarge;
    return std::nullopt;
  }
  if (carries_descriptor(static_cast<MessageType>(header.type), header.flags)) {
    error = Errc::kMissingDescriptor;
    return std::nullopt;
  }
  if (buffered() < sizeof(Header) + header.payload_size) return std::nullopt;

  Message message;
  message.type = static_cast<MessageType>(header.type);
  message.connection_id = header.connection_id;
  message.flags = header.flags;
  message.payload.assign(buffer_, consumed_ + sizeof(Header), header.payload_size);
  consumed_ += sizeof(Header) + header.payload_size;

  // Compact once everything is consumed, or once the consumed prefix outweighs the rest.
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ > buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  return message;
}

}  // namespace handoff::ipc
