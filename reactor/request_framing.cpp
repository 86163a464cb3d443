#include "reactor/request_framing.hpp"

#include <strings.h>

namespace handoff::reactor {

RequestFraming::RequestFraming(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {
  http_parser_settings_init(&settings_);
  settings_.on_header_field = [](http_parser* p, const char* at, size_t length) {
    // A field name split across two reads is rare; "Expect" is matched only when it arrives whole.
    self(p).reading_expect_ = length == 6 && strncasecmp(at, "expect", 6) == 0;
    return 0;
  };
  settings_.on_header_value = [](http_parser* p, const char* at, size_t length) {
    RequestFraming& framing = self(p);
    if (framing.reading_expect_ && length == 12 && strncasecmp(at, "100-continue", 12) == 0) {
      framing.expect_continue_ = true;
    }
    return 0;
  };
  settings_.on_headers_complete = [](http_parser* p) { return self(p).on_headers_complete(); };
  settings_.on_body = [](http_parser* p, const char*, size_t length) {
    RequestFraming& framing = self(p);
    framing.body_bytes_ += length;
    return framing.body_bytes_ > framing.max_body_bytes_ ? -1 : 0;
  };
  settings_.on_message_complete = [](http_parser* p) {
    self(p).complete_ = true;
    http_parser_pause(p, 1);  // The first request only: what follows is the next one's.
    return 0;
  };
  reset();
}

void RequestFraming::reset() {
  parser_started_ = head_complete_ = complete_ = rejected_ = false;
  reading_expect_ = expect_continue_ = continue_due_ = false;
  body_bytes_ = 0;
}

int RequestFraming::on_headers_complete() {
  head_complete_ = true;
  if ((parser_.flags & F_CONTENTLENGTH) && parser_.content_length > max_body_bytes_) return -1;
  const bool body_follows = (parser_.flags & F_CHUNKED) || parser_.content_length > 0;
  continue_due_ = expect_continue_ && body_follows && parser_.http_major == 1 && parser_.http_minor >= 1;
  return 0;
}

void RequestFraming::feed(Protocol protocol, std::string_view bytes) {
  if (ready() || bytes.empty()) return;
  if (protocol == Protocol::kLine) {
    complete_ = head_complete_ = bytes.find('\n') != std::string_view::npos;
    return;
  }
  if (protocol != Protocol::kHttp) return;
  if (!parser_started_) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    parser_started_ = true;
  }
  http_parser_execute(&parser_, &settings_, bytes.data(), bytes.size());
  const http_errno error = HTTP_PARSER_ERRNO(&parser_);
  if (error != HPE_OK && error != HPE_PAUSED) rejected_ = true;
}

bool RequestFraming::take_continue() {
  const bool due = continue_due_ && !ready();
  continue_due_ = false;
  return due;
}

}  // namespace handoff::reactor
