// Fuzz target: the reactor's head reader. The input is what a client sends, cut into the pieces a socket
// might deliver (seeded by the bytes themselves, so that raw requests make the corpus). Each piece is taken
// as reactor/connection.cpp takes it: appended up to the read cap, the protocol detected from the bytes so
// far (reactor/protocol.hpp) until it is known, and RequestFraming fed what it has not seen; the input's end
// is the client's EOF. It runs with the default limits and with small ones, which bring the caps in reach.
// Checked:
// - once the first line decides the protocol, more bytes do not change it (apart from the two decisions
//   protocol.hpp makes on purpose from what has arrived: blank lines alone, and a line past 8 KiB);
// - a line request is complete exactly when a line end has arrived;
// - on HTTP the reactor's verdict (complete, or refused with a status) is the verdict of the handler's own
//   parser (keep_fields, as the handler library runs it) over the same bytes in one piece: what the reactor
//   lets through is what the handler reads, and the cut does not matter (nor, with
//   HANDOFF_FUZZ_EXACT_STATUS set, for the status of a refusal: fuzz/README.md, "Known findings");
// - "100 Continue" is due at most once.

#include <algorithm>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_support.hpp"
#include "http/request_parser.hpp"
#include "reactor/protocol.hpp"
#include "reactor/request_framing.hpp"

namespace handoff::fuzz {
namespace {

using reactor::Protocol;

struct Caps {
  size_t max_head_bytes;
  size_t max_request_bytes;
};

// reactor/connection.cpp's Connection::read_cap.
size_t read_cap(Protocol protocol, const Caps& caps) {
  switch (protocol) {
    case Protocol::kLine: return caps.max_request_bytes + 2;
    case Protocol::kHttp:
      return caps.max_head_bytes + http::RequestLimits::body_phase_bytes(caps.max_request_bytes);
    case Protocol::kUnknown: break;
  }
  return caps.max_head_bytes;
}

bool decides_by_content(std::string_view bytes) {
  return bytes.size() <= 8 * 1024 && bytes.find_first_not_of(" \t\r\n") != std::string_view::npos;
}

void frame(std::string_view input, const Caps& caps) {
  const http::RequestLimits limits{.max_head_bytes = caps.max_head_bytes,
                                   .max_body_bytes = caps.max_request_bytes};
  reactor::RequestFraming framing(limits);
  Protocol protocol = Protocol::kUnknown;
  bool decided_by_content = false;
  std::string received;
  size_t framed = 0;
  int continues = 0;
  bool ready = false;
  for (std::string_view piece : pieces_of(input, hash_of(input))) {
    piece = piece.substr(0, read_cap(protocol, caps) - received.size());
    received.append(piece);
    if (protocol == Protocol::kUnknown) {
      protocol = reactor::detect_protocol(received);
      decided_by_content = protocol != Protocol::kUnknown && decides_by_content(received);
    } else if (decided_by_content) {
      FUZZ_CHECK(reactor::detect_protocol(received) == protocol);
    }
    if (protocol != Protocol::kUnknown) {
      framing.feed(protocol, std::string_view(received).substr(framed));
      framed = received.size();
      continues += framing.take_continue();
    }
    if (framing.ready() || received.size() >= read_cap(protocol, caps)) {
      ready = true;
      break;
    }
  }
  FUZZ_CHECK(continues <= 1);
  if (received.empty()) return;
  const bool end_of_input = !ready;
  if (end_of_input && protocol == Protocol::kHttp) framing.finish();
  // Still undecided at EOF or at the cap: handed off as a line request that the framing never saw.
  if (protocol == Protocol::kUnknown) return;

  if (protocol == Protocol::kLine) {
    FUZZ_CHECK(framing.complete() == (received.find('\n') != std::string::npos));
    FUZZ_CHECK(!framing.refused());
    return;
  }
  // The handler reads the bytes it is handed with its own parser (handler/http_session.cpp).
  http::RequestParser handler_parser(limits);
  handler_parser.feed(received);
  if (end_of_input) handler_parser.finish();
  if (!framing.ready()) {
    // Cut at the read cap: handed off unfinished (kFlagHeadTruncated), the handler reads on.
    FUZZ_CHECK(received.size() >= read_cap(protocol, caps));
    FUZZ_CHECK(handler_parser.state() == http::RequestParser::State::kHead ||
               handler_parser.state() == http::RequestParser::State::kBody);
    return;
  }
  FUZZ_CHECK(framing.complete() == (handler_parser.state() == http::RequestParser::State::kComplete));
  FUZZ_CHECK(framing.refused() == (handler_parser.state() == http::RequestParser::State::kRefused));
  if (framing.refused()) {
    // The status can depend on where the bytes were cut, for now (fuzz/README.md, "Known findings").
    static const bool exact_status = std::getenv("HANDOFF_FUZZ_EXACT_STATUS") != nullptr;
    if (exact_status) FUZZ_CHECK(framing.refusal_status() == handler_parser.refusal_status());
    FUZZ_CHECK(framing.refusal_status() >= 400 && framing.refusal_status() <= 599);
    FUZZ_CHECK(!framing.refusal_reason().empty());
  }
  if (framing.complete()) FUZZ_CHECK(framing.head_request() == (handler_parser.head().method == "HEAD"));
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  const std::string_view input = as_text(data, size);
  frame(input, {.max_head_bytes = 64 * 1024, .max_request_bytes = 2 * 1024 * 1024});  // The defaults.
  frame(input, {.max_head_bytes = 512, .max_request_bytes = 256});
  return 0;
}
