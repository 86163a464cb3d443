#include "ipc/wire.hpp"

#include <algorithm>
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

std::string progress_payload(uint64_t bytes_written, int status, std::string_view unconsumed,
                             uint16_t route) {
  const Progress progress{
      .bytes_written = bytes_written, .status = static_cast<uint16_t>(status), .route = route};
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

std::string route_table_payload(const std::vector<RouteEntry>& routes) {
  std::string payload;
  for (size_t i = 0; i < routes.size() && i < kMaxRoutes; ++i) {
    const std::string_view name = std::string_view(routes[i].name).substr(0, kMaxRouteNameBytes);
    const RouteEntryHead head{.name_bytes = static_cast<uint16_t>(name.size()), .flags = routes[i].flags};
    payload.append(reinterpret_cast<const char*>(&head), sizeof(head));
    payload.append(name);
  }
  return payload;
}

bool decode_route_table(std::string_view payload, std::vector<RouteEntry>& routes) {
  routes.clear();
  while (!payload.empty() && routes.size() < kMaxRoutes) {
    RouteEntryHead head;
    if (payload.size() < sizeof(head)) return false;
    std::memcpy(&head, payload.data(), sizeof(head));
    payload.remove_prefix(sizeof(head));
    if (payload.size() < head.name_bytes) return false;
    routes.push_back(
        {.name = std::string(payload.substr(0, std::min<size_t>(head.name_bytes, kMaxRouteNameBytes))),
         .flags = head.flags});
    payload.remove_prefix(head.name_bytes);
  }
  return true;
}

}  // namespace handoff::ipc
