#include "ipc/wire.hpp"

#include <cassert>
#include <cstring>

namespace handoff::ipc {
namespace {

class IpcCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "ipc"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::kBadMagic: return "frame does not start with the handoff magic";
      case Errc::kVersionMismatch: return "peer speaks another ipc protocol version";
      case Errc::kUnknownType: return "unknown frame type";
      case Errc::kFrameTooLarge: return "frame payload larger than the limit";
      case Errc::kUnexpectedDescriptor: return "descriptor attached to a frame that must not carry one";
      case Errc::kMissingDescriptor: return "frame arrived without its descriptor";
      case Errc::kControlDataTruncated: return "control data truncated (MSG_CTRUNC): descriptors were lost";
      case Errc::kPeerClosed: return "peer closed the channel";
      case Errc::kTruncatedFrame: return "peer closed the channel in the middle of a frame";
    }
    return "unknown ipc error";
  }
};

}  // namespace

const std::error_category& ipc_category() {
  static const IpcCategory category;
  return category;
}

std::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), ipc_category()};
}

std::error_code check_header(const Header& header) {
  if (header.magic != kMagic) return Errc::kBadMagic;
  if (header.version != kVersion) return Errc::kVersionMismatch;
  switch (static_cast<MessageType>(header.type)) {
    case MessageType::kHello:
    case MessageType::kConnection:
    case MessageType::kDone:
    case MessageType::kAnswered:
    case MessageType::kReclaim:
    case MessageType::kTakeoverListener:
    case MessageType::kTakeoverReady:
    case MessageType::kTakeoverConnection:
    case MessageType::kTakeoverEnd:
    case MessageType::kForget:
    case MessageType::kTakeoverBytes:
    case MessageType::kForkChannel:
    case MessageType::kForkRecord:
    case MessageType::kHandlerForked:
    case MessageType::kHandlerExited:
    case MessageType::kForkOutput: break;
    default: return Errc::kUnknownType;
  }
  if (header.payload_size > max_payload_bytes(static_cast<MessageType>(header.type)))
    return Errc::kFrameTooLarge;
  return {};
}

bool carries_descriptor(MessageType type, uint32_t flags) {
  return (type == MessageType::kConnection && (flags & kFlagKept) == 0) ||
         type == MessageType::kTakeoverListener || type == MessageType::kTakeoverConnection ||
         type == MessageType::kForkChannel || type == MessageType::kForkRecord ||
         type == MessageType::kForkOutput;
}

std::string encode(const Message& message) {
  assert(message.payload.size() <= max_payload_bytes(message.type));
  const Header header{
      .magic = kMagic,
      .version = kVersion,
      .type = static_cast<uint16_t>(message.type),
      .connection_id = message.connection_id,
      .flags = message.flags,
      .payload_size = static_cast<uint32_t>(message.payload.size()),
  };
  std::string frame(sizeof(Header) + message.payload.size(), '\0');
  std::memcpy(frame.data(), &header, sizeof(Header));
  std::memcpy(frame.data() + sizeof(Header), message.payload.data(), message.payload.size());
  return frame;
}

std::string progress_payload(uint64_t bytes_written, int status, std::string_view unconsumed) {
  const Progress progress{.bytes_written = bytes_written, .status = static_cast<uint16_t>(status)};
  std::string payload(reinterpret_cast<const char*>(&progress), sizeof(progress));
  payload.append(unconsumed);
  return payload;
}

bool split_progress_payload(std::string& payload, Progress& progress) {
  if (payload.size() < sizeof(Progress)) return false;
  std::memcpy(&progress, payload.data(), sizeof(progress));
  payload.erase(0, sizeof(progress));
  return true;
}

}  // namespace handoff::ipc
