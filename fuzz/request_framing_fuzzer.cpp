// Fuzz target: the reactor's request reader. The input is what a client sends, cut into the pieces a socket
// might deliver (seeded by the bytes themselves, so that raw requests make the corpus). Each piece is taken
// as reactor/connection.cpp takes it: appended up to the read cap, the protocol detected from the bytes so
// far (reactor/protocol.hpp) until it is known (a first line still undecided at the cap is the line
// protocol's), RequestFraming fed what it has not seen, and a request that reaches the cap refused as too
// large; the input's end is the client's EOF. It runs with the default limits and with small ones, which
// bring the caps in reach. A handler only ever gets a whole request, read and judged here. Checked:
// - once the first line decides the protocol, more bytes do not change it (apart from the two decisions
//   protocol.hpp makes on purpose from what has arrived: blank lines alone, and a line past 8 KiB);
// - a line request is complete exactly when a line end has arrived within the limit, refused (413, "request
//   too large") exactly when the line is longer than the limit, and its request_bytes() end at its line end;
//   a line cut by EOF, handed over as it is, is within the limit;
// - on HTTP every request is decided (complete or refused) by the cap or the EOF, and the reactor's verdict
//   is the verdict of the same parser over the same bytes in one piece: what the reactor lets through is
//   what a handler would read, and the cut does not matter (nor, with HANDOFF_FUZZ_EXACT_STATUS set, for the
//   status of a refusal: fuzz/README.md, "Known findings"); a complete request's request_bytes() are those
//   the parser takes, within the bytes fed, and its fields (the request record's) are the same;
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
      return caps.max_head_bytes + http::RequestLimits::body_phase_bytes(caps.max_request_bytes) + 1;
    case Protocol::kUnknown: break;
  }
  return caps.max_head_bytes;
}

bool decides_by_content(std::string_view bytes) {
  return bytes.size() <= 8 * 1024 && bytes.find_first_not_of(" \t\r\n") != std::string_view::npos;
}

// The first line of bytes as the line protocol measures it: up to its line end, without it; all of bytes when
// no line end has come, less a CR at the end, which may begin one.
std::string_view first_line(std::string_view bytes) {
  std::string_view line = bytes.substr(0, bytes.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

void check_line(const reactor::RequestFraming& framing, std::string_view received, bool end_of_input,
                const Caps& caps) {
  const std::string_view line = first_line(received);
  const bool line_end = received.find('\n') != std::string_view::npos;
  const bool over = line.size() > caps.max_request_bytes;
  if (framing.refused()) {
    FUZZ_CHECK(over);
    FUZZ_CHECK(framing.refusal_status() == 413 && framing.refusal_reason() == "request too large");
  }
  FUZZ_CHECK(framing.refused() == over);
  FUZZ_CHECK(framing.complete() == (line_end && !over));
  if (framing.complete()) FUZZ_CHECK(framing.request_bytes() == received.find('\n') + 1);
  // Not ready at EOF: the line cut short is handed over whole.
  if (!framing.ready()) FUZZ_CHECK(end_of_input && !line_end);
}

void check_http(const reactor::RequestFraming& framing, std::string_view received, bool end_of_input,
                const http::RequestLimits& limits) {
  FUZZ_CHECK(framing.ready());  // Complete or refused: a handler never gets an unfinished request.
  http::RequestParser one_piece(limits);
  const size_t taken = one_piece.feed(received);
  if (end_of_input) one_piece.finish();
  FUZZ_CHECK(framing.complete() == (one_piece.state() == http::RequestParser::State::kComplete));
  FUZZ_CHECK(framing.refused() == (one_piece.state() == http::RequestParser::State::kRefused));
  if (framing.refused()) {
    // The status can depend on where the bytes were cut, for now (fuzz/README.md, "Known findings").
    static const bool exact_status = std::getenv("HANDOFF_FUZZ_EXACT_STATUS") != nullptr;
    if (exact_status) FUZZ_CHECK(framing.refusal_status() == one_piece.refusal_status());
    FUZZ_CHECK(framing.refusal_status() >= 400 && framing.refusal_status() <= 599);
    FUZZ_CHECK(!framing.refusal_reason().empty());
    return;
  }
  // What goes into the request record.
  FUZZ_CHECK(framing.request_bytes() > 0 && framing.request_bytes() <= received.size());
  FUZZ_CHECK(framing.request_bytes() == taken);
  const http::RequestHead& head = framing.head();
  const http::RequestHead& expected = one_piece.head();
  FUZZ_CHECK(head.method == expected.method && head.target == expected.target &&
             head.version_minor == expected.version_minor && head.keep_alive == expected.keep_alive);
  FUZZ_CHECK(head.headers.size() == expected.headers.size());
  for (size_t i = 0; i < head.headers.size(); ++i) {
    FUZZ_CHECK(head.headers[i].name == expected.headers[i].name &&
               head.headers[i].value == expected.headers[i].value);
  }
  FUZZ_CHECK(framing.body() == one_piece.body());
  FUZZ_CHECK(framing.head_request() == (expected.method == "HEAD"));
}

// Reads one request of input, on a connection whose protocol is known or not yet (protocol, which it may
// decide), as Connection::read_available does; checks the verdict; returns the bytes the request took when
// it is complete, 0 when the connection ends with it.
size_t frame_one(reactor::RequestFraming& framing, Protocol& protocol, std::string_view input,
                 const Caps& caps, const http::RequestLimits& limits) {
  bool decided_by_content = false;
  std::string received;
  size_t framed = 0;
  int continues = 0;
  bool ready = false;
  const bool first = protocol == Protocol::kUnknown;
  for (std::string_view piece : pieces_of(input, hash_of(input))) {
    piece = piece.substr(0, read_cap(protocol, caps) - received.size());
    received.append(piece);
    if (protocol == Protocol::kUnknown) {
      protocol = reactor::detect_protocol(received);
      decided_by_content = protocol != Protocol::kUnknown && decides_by_content(received);
    } else if (decided_by_content) {
      FUZZ_CHECK(reactor::detect_protocol(received) == protocol);
    }
    // Connection::frame_received.
    if (protocol == Protocol::kUnknown && received.size() >= read_cap(protocol, caps))
      protocol = Protocol::kLine;
    if (protocol != Protocol::kUnknown) {
      framing.feed(protocol, std::string_view(received).substr(framed));
      framed = received.size();
      if (received.size() >= read_cap(protocol, caps)) framing.refuse_as_too_large();
      continues += framing.take_continue();
    }
    if (framing.ready()) {
      ready = true;
      break;
    }
    FUZZ_CHECK(received.size() < read_cap(protocol, caps));  // Room to read on.
  }
  FUZZ_CHECK(continues <= 1);
  if (received.empty()) return 0;
  const bool end_of_input = !ready;
  if (end_of_input) {
    // Connection::finish_framing: still undecided at EOF, the bytes are a line, measured as one.
    if (protocol == Protocol::kUnknown) {
      FUZZ_CHECK(first);
      protocol = Protocol::kLine;
      framing.feed(protocol, std::string_view(received).substr(framed));
    }
    framing.finish(protocol);
  }
  if (protocol == Protocol::kLine) {
    check_line(framing, received, end_of_input, caps);
  } else {
    check_http(framing, received, end_of_input, limits);
  }
  return framing.complete() ? framing.request_bytes() : 0;
}

// The requests of input one after the other, as a connection reads them between hand-offs: the framing
// reset for each, the protocol kept.
void frame(std::string_view input, const Caps& caps) {
  const http::RequestLimits limits{.max_head_bytes = caps.max_head_bytes,
                                   .max_body_bytes = caps.max_request_bytes};
  reactor::RequestFraming framing(limits);
  Protocol protocol = Protocol::kUnknown;
  for (int request = 0; request < 8 && !input.empty(); ++request) {
    const size_t taken = frame_one(framing, protocol, input, caps, limits);
    if (taken == 0) return;
    input.remove_prefix(taken);
    framing.reset();
  }
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
