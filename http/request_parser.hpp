#pragma once

// RequestParser: the one HTTP/1.x request parser of handoff, shared by the reactor (which reads every request
// whole before a hand-off, and refuses a malformed one itself), the admin port and the handler library. It
// runs llhttp (Node's parser, generated C from Debian's node-llhttp) in its strict mode and adds the rules of
// RFC 9112 and RFC 9110 that llhttp leaves to its user, so that everything that reads a request in handoff
// agrees on where it ends and whether it is acceptable (a proxy in front cannot be smuggled past it).
//
// The rules, each refused with its status and the connection closed:
// - llhttp strict: a CR not followed by LF, whitespace between a field name and its colon, obs-fold, invalid
//   bytes in a name, value or target, a bad or repeated Content-Length, Content-Length with
//   Transfer-Encoding, a request Transfer-Encoding whose last coding is not chunked, malformed chunks: 400;
//   an unknown method: 501.
// - Ours: Transfer-Encoding in HTTP/1.0 (RFC 9112 section 6.1): 400. Host missing or repeated in HTTP/1.1, or
//   not a valid host[:port] (RFC 9112 section 3.2): 400. The target "*" with another method than OPTIONS
//   (RFC 9112 section 3.2.4): 400. A version other than 1.0 or 1.1: 505. A target longer than
//   max_target_bytes: 414. A head longer than max_head_bytes: 431. A body longer than max_body_bytes: 413.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llhttp.h"

namespace handoff::http {

struct RequestLimits {
  size_t max_head_bytes = 64 * 1024;        // Request line and header fields; the trailer section too.
  size_t max_body_bytes = 2 * 1024 * 1024;  // After chunked decoding.
  size_t max_target_bytes = 8 * 1024;

  // The most bytes the body of a request may take on the wire, chunk framing and trailers included: a body of
  // max_body_bytes in small chunks, or megabytes of chunk extensions around a tiny one, is refused past this.
  static constexpr size_t body_phase_bytes(size_t max_body_bytes) { return 2 * max_body_bytes + 64 * 1024; }
};

struct HeaderField {
  std::string name;  // As sent; compare without regard to case.
  std::string value;
};

// What a complete head says.
struct RequestHead {
  std::string method;  // "GET"
  std::string target;  // "/fib/30?x=1", as sent.
  int version_minor = 1;
  std::vector<HeaderField> headers;  // Only when the parser keeps fields.
  bool keep_alive = true;            // After this request (Connection, and the version's default).
  bool expect_continue = false;      // "Expect: 100-continue".
  bool body_follows = false;         // A Content-Length above 0, or chunked.

  // The value of the first header field of that name, compared without regard to case; empty if none.
  // Only when the parser keeps fields.
  std::string_view header(std::string_view name) const;
};

class RequestParser {
 public:
  enum class State {
    kHead,      // Reading the head.
    kBody,      // The head is complete; reading the body.
    kComplete,  // One request is complete; the parser takes nothing more until reset().
    kRefused,   // The request is not acceptable: refusal_status() and refusal_reason() say why.
  };

  // keep_fields: whether head().headers and body() are filled in (the reactor, which hands the request over
  // parsed, the admin port and the handler library), or the request is only checked and measured.
  explicit RequestParser(RequestLimits limits, bool keep_fields = true);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Starts over, for the next request on the connection.
  void reset();

  // Parses bytes that follow those fed before; returns how many it took: all of them, unless the request
  // became complete (then what follows is the next request's) or was refused.
  size_t feed(std::string_view bytes);
  // The client sent EOF: a request cut short is refused (400).
  void finish();

  State state() const { return state_; }
  bool head_complete() const { return state_ == State::kBody || state_ == State::kComplete; }
  // Bytes of the current request taken so far.
  const RequestHead& head() const { return head_; }
  int refusal_status() const { return refusal_status_; }
  const std::string& refusal_reason() const { return refusal_reason_; }
  const std::string& body() const { return body_; }

 private:
  static RequestParser& self(llhttp_t* parser) { return *static_cast<RequestParser*>(parser->data); }
  int refuse(int status, std::string reason);
  int on_url(std::string_view bytes);
  int on_header_value_complete();
  int on_headers_complete();
  void check_head();
  int on_body(std::string_view bytes);
  void check_line_ends(std::string_view head_bytes);
  void refuse_as_llhttp_does(llhttp_errno_t error);

  const RequestLimits limits_;
  const bool keep_fields_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  State state_ = State::kHead;
  size_t consumed_ = 0;
  RequestHead head_;
  std::string body_;
  size_t body_bytes_ = 0;
  size_t head_bytes_ = 0;     // Of consumed_, the head's.
  size_t trailer_bytes_ = 0;  // Of consumed_, the trailer section's.
  std::string request_line_;  // Without its line end; cut at max_target_bytes and a little more.
  bool request_line_complete_ = false;
  bool at_line_start_ = false;  // The last head byte checked ended a line.
  bool chunk_extension_named_ = false;
  bool in_trailers_ = false;     // The last chunk was read.
  bool trailers_begun_ = false;  // feed() checks the bytes from here on, as it does the head's.
  std::string field_;            // The name of the header field being read, then its value.
  std::string value_;
  unsigned hosts_ = 0;
  bool host_valid_ = true;
  bool after_cr_ = false;  // The last head byte checked was a CR.
  int refusal_status_ = 0;
  std::string refusal_reason_;
};

}  // namespace handoff::http
