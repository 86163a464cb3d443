#pragma once

// Internal to the reactor. RequestFraming: where the first request among a connection's bytes ends, so that
// the reactor reads a whole request — line, or HTTP head and body — before it hands the connection to a
// handler. A slow client then costs the reactor some bytes and never a handler. For HTTP it runs the strict
// parser every part of handoff uses (http/request_parser.hpp), so a request the reactor lets through is one
// the handler reads the same way; one the parser refuses is answered by the reactor itself.

#include <cstddef>
#include <string_view>

#include "http/request_parser.hpp"
#include "reactor/protocol.hpp"

namespace handoff::reactor {

class RequestFraming {
 public:
  explicit RequestFraming(http::RequestLimits limits) : parser_(limits, /*keep_fields=*/false) {}

  // Starts over, for the next request.
  void reset();

  // Takes the bytes received after those fed before (the connection feeds each byte once, in order).
  void feed(Protocol protocol, std::string_view bytes);

  // The client sent EOF on an HTTP connection: a request cut short is refused.
  void finish() { parser_.finish(); }

  // The handler should have the connection now, or the reactor must refuse the request.
  bool ready() const { return complete_ || refused(); }
  // The whole request is there: the handler need not read from the socket for it.
  bool complete() const { return complete_; }
  bool head_complete() const { return complete_ || parser_.head_complete(); }
  // The HTTP request is not acceptable: answer refusal_status() with refusal_reason() and close.
  bool refused() const { return parser_.state() == http::RequestParser::State::kRefused; }
  int refusal_status() const { return parser_.refusal_status(); }
  const std::string& refusal_reason() const { return parser_.refusal_reason(); }
  // The request is a HEAD: its answer, a refusal too, carries no body (RFC 9110 section 9.3.2).
  bool head_request() const { return parser_.head().method == "HEAD"; }

  // True once per request, when the client asked "Expect: 100-continue" in HTTP/1.1 and the body is still to
  // come: the reactor then answers "100 Continue" itself (RFC 9110 section 10.1.1), since it reads the body.
  bool take_continue();
  // Whether "100 Continue" was answered for the request being read; a takeover passes it on, and the reactor
  // that takes over assumes it (before it feeds the request's bytes) so that the client does not get two.
  bool continue_answered() const { return continue_answered_; }
  void assume_continue_answered() { continue_answered_ = true; }

 private:
  http::RequestParser parser_;
  bool complete_ = false;
  bool continue_answered_ = false;
};

}  // namespace handoff::reactor
