#pragma once

// FrameDecoder: turns a byte stream from a non-blocking channel into messages, as the reactor reads it.
// It never sees descriptors: frames that carry one do not travel in the direction it decodes.

#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "ipc/wire.hpp"

namespace handoff::ipc {

class FrameDecoder {
 public:
  void append(std::span<const char> bytes) { buffer_.append(bytes.data(), bytes.size()); }

  // The next complete frame, or nullopt when more bytes are needed. A broken frame sets error; the decoder is
  // then of no further use (the channel must be closed).
  std::optional<Message> next(std::error_code& error);

  // Bytes received but not yet returned as a message.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;
};

}  // namespace handoff::ipc
