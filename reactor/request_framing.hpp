#pragma once

// Internal to the reactor. RequestFraming: where the first request among a connection's bytes ends, so that
// the reactor reads a whole request — line, or HTTP head and body — before it hands the connection to a
// handler. A slow client then costs the reactor some bytes and never a handler. For HTTP it runs the same
// parser as the handler library (libhttp-parser), so the two agree on every request's length; whatever that
// parser rejects is handed off at once, and the handler answers it with the precise error.

#include <http_parser.h>

#include <cstddef>
#include <string_view>

#include "reactor/request_head.hpp"

namespace handoff::reactor {

class RequestFraming {
 public:
  // max_body_bytes: --max-request-bytes. A request that declares a longer body is handed off as soon as its
  // head is complete (the handler refuses it with 413).
  explicit RequestFraming(size_t max_body_bytes);
  RequestFraming(const RequestFraming&) = delete;
  RequestFraming& operator=(const RequestFraming&) = delete;

  // Starts over, for the next request.
  void reset();

  // Takes the bytes received after those fed before (the connection feeds each byte once, in order).
  void feed(Protocol protocol, std::string_view bytes);

  // The handler should have the connection now: the request is complete, or it is malformed or too large
  // (the handler answers with the error).
  bool ready() const { return complete_ || rejected_; }
  // The whole request is there: the handler need not read from the socket for it.
  bool complete() const { return complete_; }
  bool head_complete() const { return head_complete_; }

  // True once per request, when the client asked "Expect: 100-continue" in HTTP/1.1 and the body is still to
  // come: the reactor then answers "100 Continue" itself (RFC 9110 section 10.1.1), since it reads the body.
  bool take_continue();

 private:
  static RequestFraming& self(http_parser* parser) { return *static_cast<RequestFraming*>(parser->data); }
  int on_headers_complete();

  const size_t max_body_bytes_;
  http_parser_settings settings_;
  http_parser parser_;
  bool parser_started_ = false;
  bool head_complete_ = false;
  bool complete_ = false;
  bool rejected_ = false;
  bool reading_expect_ = false;  // The header field being read is "Expect".
  bool expect_continue_ = false;
  bool continue_due_ = false;
  size_t body_bytes_ = 0;
};

}  // namespace handoff::reactor
