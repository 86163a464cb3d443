// Fuzz target: ipc::FrameDecoder, which turns what a handler writes on its channel into frames in the
// reactor. A handler is another program (--handler-cmd), so its bytes are peer bytes. The first input byte
// seeds where the rest is cut into the pieces the decoder is given, as recvmsg cuts a stream. Checked: every
// frame returned agrees with its header read independently of the decoder, no frame carries a descriptor or
// more than its type's payload limit, the decoder accounts for every byte, and the cut changes nothing; a
// payload read as a hello's route table is bounded, and reads back the same once written again.

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "ipc/frame_decoder.hpp"
#include "ipc/wire.hpp"

namespace handoff::fuzz {
namespace {

struct Decoded {
  std::vector<ipc::Message> messages;
  std::error_code error;
  size_t buffered = 0;
};

bool same_messages(const std::vector<ipc::Message>& a, const std::vector<ipc::Message>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].connection_id != b[i].connection_id || a[i].flags != b[i].flags ||
        a[i].payload != b[i].payload) {
      return false;
    }
  }
  return true;
}

Decoded decode(std::string_view stream, const std::vector<std::string_view>& pieces) {
  ipc::FrameDecoder decoder;
  Decoded decoded;
  size_t appended = 0;
  size_t returned = 0;  // Bytes of the frames returned so far.
  for (const std::string_view piece : pieces) {
    decoder.append(piece);
    appended += piece.size();
    while (std::optional<ipc::Message> message = decoder.next(decoded.error)) {
      // The frame as its header, read here on its own, says it is.
      FUZZ_CHECK(returned + sizeof(ipc::Header) <= appended);
      ipc::Header header;
      std::memcpy(&header, stream.data() + returned, sizeof(header));
      FUZZ_CHECK(!ipc::check_header(header));
      FUZZ_CHECK(header.payload_size <= ipc::max_payload_bytes(message->type));
      FUZZ_CHECK(message->type == ipc::MessageType::kConnection ||
                 header.payload_size <= ipc::kMaxPayloadBytes);
      FUZZ_CHECK(static_cast<uint16_t>(message->type) == header.type);
      FUZZ_CHECK(!ipc::carries_descriptor(message->type, message->flags));
      FUZZ_CHECK(message->connection_id == header.connection_id && message->flags == header.flags);
      FUZZ_CHECK(message->payload == stream.substr(returned + sizeof(header), header.payload_size));
      FUZZ_CHECK(!message->descriptor.valid());
      returned += sizeof(header) + header.payload_size;
      FUZZ_CHECK(!decoded.error);
      FUZZ_CHECK(decoder.buffered() == appended - returned);
      // What the reactor does with a hello's route table: bounded, and a table read is the table written.
      std::vector<ipc::RouteEntry> routes;
      if (ipc::decode_route_table(message->payload, routes)) {
        FUZZ_CHECK(routes.size() <= ipc::kMaxRoutes);
        for (const ipc::RouteEntry& route : routes) FUZZ_CHECK(route.name.size() <= ipc::kMaxRouteNameBytes);
        std::vector<ipc::RouteEntry> again;
        FUZZ_CHECK(ipc::decode_route_table(ipc::route_table_payload(routes), again));
        FUZZ_CHECK(again.size() == routes.size());
        for (size_t i = 0; i < routes.size(); ++i)
          FUZZ_CHECK(again[i].name == routes[i].name && again[i].flags == routes[i].flags);
      }
      // What the reactor does with progress reports.
      ipc::Progress progress;
      if (ipc::split_progress_payload(message->payload, progress)) {
        FUZZ_CHECK(message->payload.size() + sizeof(progress) == header.payload_size);
      }
      decoded.messages.push_back(std::move(*message));
    }
    if (decoded.error) break;  // The reactor closes the channel: nothing more is decoded.
    FUZZ_CHECK(decoder.buffered() == appended - returned);
    if (decoder.buffered() >= sizeof(ipc::Header)) {
      // The decoder waits for no payload over kMaxPayloadBytes, whatever its type (a kConnection, which may
      // be larger, never travels the way it reads).
      ipc::Header header;
      std::memcpy(&header, stream.data() + returned, sizeof(header));
      FUZZ_CHECK(header.payload_size <= ipc::kMaxPayloadBytes);
    }
  }
  decoded.buffered = decoder.buffered();
  return decoded;
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  if (size == 0) return 0;
  const std::string_view stream = as_text(data + 1, size - 1);
  const Decoded whole = decode(stream, {stream});
  const Decoded cut = decode(stream, pieces_of(stream, data[0]));
  FUZZ_CHECK(same_messages(whole.messages, cut.messages));
  FUZZ_CHECK(whole.error == cut.error);
  // After an error, what was buffered depends on how much had arrived: compared only without one.
  FUZZ_CHECK(whole.error || whole.buffered == cut.buffered);
  return 0;
}
