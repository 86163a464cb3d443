#pragma once

// Internal to the reactor. RequestFraming: where the first request among a connection's bytes ends, so that
// the reactor reads a whole request — line, or HTTP head and body — before it hands the connection to a
// handler. A slow client then costs the reactor some bytes and never a handler. For HTTP it runs the strict
// parser every part of handoff uses (http/request_parser.hpp), so a request the reactor lets through is one
// the handler reads the same way; one the parser refuses is answered by the reactor itself.

#include <cstddef>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"
#include "ipc/request_record.hpp"
#include "reactor/protocol.hpp"

namespace handoff::reactor {

class RequestFraming {
 public:
  explicit RequestFraming(http::RequestLimits limits)
      : parser_(limits), max_line_bytes_(limits.max_body_bytes) {}

  // Starts over, for the next request.
  void reset();

  // Takes the bytes received after those fed before (the connection feeds each byte once, in order).
  void feed(Protocol protocol, std::string_view bytes);

  // The client sent EOF: an HTTP request cut short is refused; a line without its line end is a request,
  // unless it is too long.
  void finish(Protocol protocol);
  // The connection read as much as it holds of one request, and it is not complete: refused as too large.
  void refuse_as_too_large();

  // The handler should have the connection now, or the reactor must refuse the request.
  bool ready() const { return complete_ || refused(); }
  // The whole request is there, parsed (a line: its end found).
  bool complete() const { return complete_; }
  bool head_complete() const { return complete_ || parser_.head_complete(); }
  // The request is not acceptable: answer refusal_status() with refusal_reason() and close.
  bool refused() const { return too_large_ || parser_.state() == http::RequestParser::State::kRefused; }
  int refusal_status() const { return too_large_ ? 413 : parser_.refusal_status(); }
  const std::string& refusal_reason() const { return too_large_ ? kTooLarge : parser_.refusal_reason(); }

  // Of the bytes fed, how many the complete request takes (its line end included); what follows is the next
  // request's.
  size_t request_bytes() const { return request_bytes_; }
  // The complete HTTP request's head and body (de-chunked).
  const http::RequestHead& head() const { return parser_.head(); }
  const std::string& body() const { return parser_.body(); }

  // Appends the record of the request at the start of raw (the bytes fed) to record (ipc/request_record.hpp),
  // with the bytes after it as its rest: an HTTP request as parsed, or a line (one cut by EOF is all of raw).
  // known: what the framing does not know of it (its id, the client).
  void append_record(Protocol protocol, std::string_view raw, ipc::RequestFields known,
                     std::string& record) const;
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
  static inline const std::string kTooLarge = "request too large";

  http::RequestParser parser_;
  const size_t max_line_bytes_;
  size_t request_bytes_ = 0;  // Fed so far (HTTP: taken by the parser), or the whole request once complete.
  bool too_large_ = false;
  bool ended_in_cr_ = false;  // The line protocol: a CR ends what was fed of the line (before its LF).
  bool complete_ = false;
  bool continue_answered_ = false;
};

}  // namespace handoff::reactor
